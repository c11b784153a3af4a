//! `processes_tree`: the attributed processes as a forest, children in start order.

use crate::attributes::{Inputs, MAX_TREE_DEPTH};
use sandscope_model::ProcessNode;
use std::collections::BTreeMap;

enum NodeRef {
    Proc(usize),
    /// A parent known only by the pid/image its children logged (Everything mode).
    Synthetic(usize),
}

/// A node's name from its command line and image (normalised by the caller, which keeps the raw
/// spelling).
pub(crate) type Namer<'a> = dyn FnMut(Option<&str>, Option<&str>) -> String + 'a;

pub(crate) fn build(inputs: &Inputs<'_>, name: &mut Namer<'_>) -> Vec<ProcessNode> {
    let table = inputs.table;
    let attribution = inputs.attribution;
    let n = table.procs.len();
    let member: Vec<bool> = (0..n)
        .map(|i| {
            if attribution.everything {
                table.procs[i].created.is_some()
                    || table.children[i]
                        .iter()
                        .any(|&c| table.procs[c].created.is_some())
            } else {
                attribution.is_included(i)
            }
        })
        .collect();
    let start_of = |i: usize| {
        let p = &table.procs[i];
        p.created.unwrap_or(p.first_seen)
    };
    let logged = |event: usize| crate::logged_second(&inputs.events[event]);
    let t0 = (0..n)
        .filter(|&i| member[i])
        .map(|i| logged(start_of(i)))
        .min();

    // Synthetic parents: grouped by the (pid, image) their children name.
    let mut synthetic: Vec<(Option<u32>, String, Option<String>)> = Vec::new();
    let mut synthetic_children: Vec<Vec<usize>> = Vec::new();
    let mut synthetic_index: BTreeMap<(Option<u32>, String), usize> = BTreeMap::new();
    let mut roots: Vec<NodeRef> = Vec::new();
    let mut order: Vec<usize> = (0..n).filter(|&i| member[i]).collect();
    order.sort_by_key(|&i| (start_of(i), i));
    for &i in &order {
        let p = &table.procs[i];
        if p.parent.is_some_and(|parent| member[parent] && parent != i) {
            continue;
        }
        if attribution.everything
            && p.parent.is_none()
            && p.created.is_some()
            && (p.parent_pid.is_some() || p.parent_image.is_some())
        {
            let image = p.parent_image.clone().unwrap_or_else(|| "?".to_string());
            let key = (p.parent_pid, image.clone());
            let index = *synthetic_index.entry(key).or_insert_with(|| {
                synthetic.push((p.parent_pid, image, p.parent_command_line.clone()));
                synthetic_children.push(Vec::new());
                roots.push(NodeRef::Synthetic(synthetic.len() - 1));
                synthetic.len() - 1
            });
            synthetic_children[index].push(i);
            continue;
        }
        roots.push(NodeRef::Proc(i));
    }

    let mut visited = vec![false; n];
    let mut forest = Vec::new();
    let mut pending: Vec<NodeRef> = roots;
    pending.reverse();
    while let Some(root) = pending.pop() {
        let mut cut = Vec::new();
        let node = match root {
            NodeRef::Proc(i) => {
                if visited[i] {
                    continue;
                }
                node_of(inputs, name, i, 0, t0, &member, &mut visited, &mut cut)
            }
            NodeRef::Synthetic(s) => {
                let (pid, image, command) = &synthetic[s];
                let mut children = Vec::new();
                for &c in &synthetic_children[s] {
                    if !visited[c] {
                        children.push(node_of(
                            inputs,
                            name,
                            c,
                            1,
                            t0,
                            &member,
                            &mut visited,
                            &mut cut,
                        ));
                    }
                }
                ProcessNode {
                    process_id: pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                    name: name(command.as_deref(), Some(image)),
                    time_offset: None,
                    children,
                }
            }
        };
        forest.push(node);
        // Chains deeper than the limit continue as roots, right after their ancestor.
        for c in cut.into_iter().rev() {
            pending.push(NodeRef::Proc(c));
        }
    }
    forest
}

#[allow(clippy::too_many_arguments)]
fn node_of(
    inputs: &Inputs<'_>,
    name: &mut Namer<'_>,
    i: usize,
    depth: usize,
    t0: Option<i64>,
    member: &[bool],
    visited: &mut [bool],
    cut: &mut Vec<usize>,
) -> ProcessNode {
    visited[i] = true;
    let table = inputs.table;
    let p = &table.procs[i];
    let time_offset = p
        .created
        .zip(t0)
        .map(|(created, t0)| (crate::logged_second(&inputs.events[created]) - t0).max(0));
    let mut kids: Vec<usize> = table.children[i]
        .iter()
        .copied()
        .filter(|&c| member[c] && !visited[c])
        .collect();
    kids.sort_by_key(|&c| {
        (
            table.procs[c].created.unwrap_or(table.procs[c].first_seen),
            c,
        )
    });
    let mut children = Vec::new();
    for c in kids {
        if visited[c] {
            continue;
        }
        if depth + 1 >= MAX_TREE_DEPTH {
            cut.push(c);
            continue;
        }
        children.push(node_of(
            inputs,
            name,
            c,
            depth + 1,
            t0,
            member,
            visited,
            cut,
        ));
    }
    ProcessNode {
        process_id: p
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".to_string()),
        name: name(p.command_line.as_deref(), p.image.as_deref()),
        time_offset,
        children,
    }
}

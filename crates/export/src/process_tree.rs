//! A report's process tree in pre-order (parents before children), the one walk both exports
//! take.

use sandscope_model::ProcessNode;

/// Deeper trees go on as new roots, so an export never nests without bound (hostile reports).
const MAX_TREE_DEPTH: usize = 64;

/// One process of the tree. Paths (`"0"`, `"0.2"`, `"0.2.1"`…) name a process by its place,
/// which is what the exports derive their deterministic ids from.
pub(crate) struct TreeStep<'a> {
    pub node: &'a ProcessNode,
    pub path: String,
    /// The parent's path; `None` for a root, and for a process continuing a too-deep tree.
    pub parent: Option<String>,
    /// The paths of the children that name this process as their parent, in order.
    pub children: Vec<String>,
}

/// Every process of `roots`, parents before children.
pub(crate) fn walk(roots: &[ProcessNode]) -> impl Iterator<Item = TreeStep<'_>> {
    let mut stack: Vec<(&ProcessNode, String, Option<String>, usize)> = roots
        .iter()
        .enumerate()
        .rev()
        .map(|(i, node)| (node, i.to_string(), None, 0))
        .collect();
    std::iter::from_fn(move || {
        let (node, path, parent, depth) = stack.pop()?;
        let mut children = Vec::new();
        for (i, child) in node.children.iter().enumerate().rev() {
            let child_path = format!("{path}.{i}");
            if depth + 1 >= MAX_TREE_DEPTH {
                stack.push((child, child_path, None, 0));
            } else {
                children.push(child_path.clone());
                stack.push((child, child_path, Some(path.clone()), depth + 1));
            }
        }
        children.reverse();
        Some(TreeStep {
            node,
            path,
            parent,
            children,
        })
    })
}

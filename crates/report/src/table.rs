//! The processes of a log, keyed by canonical ProcessGuid, with parent links from event 1 and
//! whatever other events tell about processes whose creation was not logged.

use sandscope_event::{ProcessGuid, SysmonEvent, event_id};
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub(crate) struct Proc {
    pub guid: Option<ProcessGuid>,
    pub pid: Option<u32>,
    pub image: Option<String>,
    pub command_line: Option<String>,
    pub user: Option<String>,
    pub sha256: Option<String>,
    /// Index of the parent in the table, when the parent's GUID is known.
    pub parent: Option<usize>,
    /// Parent fields as event 1 gave them (for parents whose GUID is unknown).
    pub parent_pid: Option<u32>,
    pub parent_image: Option<String>,
    pub parent_command_line: Option<String>,
    /// Index of the process-create event.
    pub created: Option<usize>,
    /// Index of the process-terminate event.
    pub terminated: Option<usize>,
    /// Index of the first event that mentions the process (as actor, parent or target).
    pub first_seen: usize,
}

#[derive(Debug, Default)]
pub(crate) struct ProcessTable {
    pub procs: Vec<Proc>,
    by_guid: HashMap<ProcessGuid, usize>,
    /// Children in creation order.
    pub children: Vec<Vec<usize>>,
    /// Events each process acted in, in log order.
    pub events_of: Vec<Vec<usize>>,
    /// The acting process of each event.
    actors: Vec<Option<usize>>,
}

impl ProcessTable {
    pub(crate) fn build(events: &[SysmonEvent]) -> Self {
        let mut table = ProcessTable {
            actors: Vec::with_capacity(events.len()),
            ..Default::default()
        };
        for (i, event) in events.iter().enumerate() {
            let actor = if event.event_id == event_id::PROCESS_CREATE {
                table.add_creation(i, event)
            } else {
                let actor = event.process_guid().map(|g| table.intern(g, i));
                if let Some(a) = actor {
                    let proc = &mut table.procs[a];
                    if proc.image.is_none() {
                        proc.image = event.image().map(str::to_string);
                    }
                    if proc.pid.is_none() {
                        proc.pid = event.process_id();
                    }
                    if event.event_id == event_id::PROCESS_TERMINATE && proc.terminated.is_none() {
                        proc.terminated = Some(i);
                    }
                }
                if matches!(
                    event.event_id,
                    event_id::CREATE_REMOTE_THREAD | event_id::PROCESS_ACCESS
                ) && let Some(target) = event.target_process_guid()
                {
                    let t = table.intern(target, i);
                    let proc = &mut table.procs[t];
                    if proc.image.is_none() {
                        proc.image = event.target_image().map(str::to_string);
                    }
                    if proc.pid.is_none() {
                        proc.pid = event.target_process_id();
                    }
                }
                actor
            };
            if let Some(a) = actor {
                table.events_of[a].push(i);
            }
            table.actors.push(actor);
        }
        table
    }

    fn add_creation(&mut self, i: usize, event: &SysmonEvent) -> Option<usize> {
        // The parent is registered first: it existed before the child.
        let parent = event.parent_process_guid().map(|g| self.intern(g, i));
        let child = self.intern(event.process_guid()?, i);
        if let Some(p) = parent {
            let proc = &mut self.procs[p];
            if proc.image.is_none() {
                proc.image = event.parent_image().map(str::to_string);
            }
            if proc.command_line.is_none() {
                proc.command_line = event.parent_command_line().map(str::to_string);
            }
            if proc.pid.is_none() {
                proc.pid = event.parent_process_id();
            }
        }
        let proc = &mut self.procs[child];
        if proc.created.is_some() {
            // A second creation event for one GUID (duplicated input): keep the first.
            return Some(child);
        }
        proc.created = Some(i);
        proc.image = event.image().map(str::to_string).or(proc.image.take());
        proc.command_line = event.command_line().map(str::to_string);
        proc.pid = event.process_id().or(proc.pid);
        proc.user = event.user().map(str::to_string);
        proc.sha256 = event.hashes().sha256;
        proc.parent_pid = event.parent_process_id();
        proc.parent_image = event.parent_image().map(str::to_string);
        proc.parent_command_line = event.parent_command_line().map(str::to_string);
        if let Some(p) = parent
            && p != child
        {
            proc.parent = Some(p);
            self.children[p].push(child);
        }
        Some(child)
    }

    fn intern(&mut self, guid: ProcessGuid, i: usize) -> usize {
        if let Some(&index) = self.by_guid.get(&guid) {
            return index;
        }
        let index = self.procs.len();
        self.by_guid.insert(guid.clone(), index);
        self.procs.push(Proc {
            guid: Some(guid),
            first_seen: i,
            ..Default::default()
        });
        self.children.push(Vec::new());
        self.events_of.push(Vec::new());
        index
    }

    pub(crate) fn find(&self, guid: &ProcessGuid) -> Option<usize> {
        self.by_guid.get(guid).copied()
    }

    pub(crate) fn actor(&self, event_index: usize) -> Option<usize> {
        self.actors.get(event_index).copied().flatten()
    }

    /// Indices of the process and its ancestors (guarding against cycles in hostile input).
    pub(crate) fn ancestors(&self, index: usize) -> Vec<usize> {
        let mut chain = vec![index];
        let mut current = index;
        while let Some(parent) = self.procs[current].parent {
            if chain.contains(&parent) || chain.len() > 4096 {
                break;
            }
            chain.push(parent);
            current = parent;
        }
        chain
    }
}

/// The lower-case file name of a Windows or Linux path.
pub(crate) fn basename_lower(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .trim()
        .to_ascii_lowercase()
}

//! Changing who is in the cluster while it runs, on top of openraft's joint consensus: adding a
//! node as a learner, promoting a learner to a voter, removing a node; finishing a change that a
//! leader's crash left half done; and what each node makes of the membership it holds (which
//! senders its bus accepts, whether it is a voter, a learner, or was removed).
//!
//! openraft 0.9 changes voters in two log entries (the joint configuration, then the new one),
//! driven by the caller of `change_membership`; a leader lost between the two leaves the cluster
//! joint. [`Membership::finish_interrupted`] runs on every node and, on a leader that finds itself
//! in a joint configuration nobody is changing, proposes the new configuration again.
//!
//! A voter is removed in two steps: first demoted to a learner (it then receives the configuration
//! in which it no longer votes, so it stops campaigning: openraft's non-voters never do), then
//! dropped. A removed leader keeps leading until the demotion commits, then steps down, and the
//! remaining voters elect a new leader, which finishes the removal.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tracing::{info, warn};

use super::types::{NodeAddr, NodeId, Raft};
use crate::net::Allowed;

/// How far behind the leader's log (entries) a learner may be when it is promoted, by default.
pub const DEFAULT_PROMOTE_LAG: u64 = 1000;

/// How long one membership log entry may take to commit before the change is reported failed.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a demoted voter is given to receive the configuration that demotes it before it is
/// dropped from the membership (a dead one never will).
const DEMOTION_GRACE: Duration = Duration::from_secs(2);

/// How long a node dropped from the membership may still send to the others' buses.
const REMOVED_GRACE: Duration = Duration::from_secs(10);

/// Why a membership change was refused or did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// Only the leader changes the membership.
    #[error("this node is not the leader")]
    NotLeader,
    #[error("node {0} is not a member of the cluster")]
    NotMember(NodeId),
    #[error("node {id} is already a member, at {at}; remove it first")]
    AlreadyMember { id: NodeId, at: String },
    #[error("address {addr} is already node {id}'s")]
    AddressTaken { addr: String, id: NodeId },
    #[error("node {0} is already a voter")]
    AlreadyVoter(NodeId),
    #[error("node {id} is {behind} entries behind the leader; it can be promoted within {max}")]
    Behind { id: NodeId, behind: u64, max: u64 },
    #[error("node {0} is the cluster's only voter and cannot be removed")]
    LastVoter(NodeId),
    #[error("removing nodes {0:?} would leave the cluster without a voter")]
    NoVoterLeft(Vec<NodeId>),
    #[error("another membership change is in progress")]
    InProgress,
    /// The change was proposed but did not commit in time: it may still commit (or be finished by
    /// the next leader).
    #[error("the membership change did not complete: {0}")]
    Incomplete(String),
}

/// One member as the leader (or, without one, this node) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: NodeId,
    pub addr: NodeAddr,
    pub voter: bool,
    /// The last log index known replicated to it (on the leader; its own last index for itself).
    pub matched: Option<u64>,
}

/// This node's place in the membership it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Standing {
    /// No membership yet: a node that asked to join and waits for the leader's first message.
    Joining = 0,
    Voter = 1,
    Learner = 2,
    /// The membership no longer names this node.
    Removed = 3,
}

impl Standing {
    /// The name INFO's `raft_membership` shows.
    pub fn name(self) -> &'static str {
        match self {
            Standing::Joining => "joining",
            Standing::Voter => "voter",
            Standing::Learner => "learner",
            Standing::Removed => "removed",
        }
    }

    fn from_u8(v: u8) -> Standing {
        match v {
            1 => Standing::Voter,
            2 => Standing::Learner,
            3 => Standing::Removed,
            _ => Standing::Joining,
        }
    }
}

/// Membership changes through this node, and its own standing.
pub struct Membership {
    raft: Raft,
    my_id: NodeId,
    /// One change at a time through this node (openraft also refuses a second one while a
    /// membership entry is uncommitted).
    change: tokio::sync::Mutex<()>,
    /// The most entries a learner may be behind to be promoted.
    promote_lag: u64,
    standing: AtomicU8,
    /// The leader no longer lists this node: a learner dropped from the membership is never
    /// sent the configuration without it (see `admin::notice_removal`).
    told_removed: std::sync::atomic::AtomicBool,
    /// For a joined node: the index of the membership that added it; earlier ones that name its
    /// id are about an earlier node (its id may have been used and removed before).
    joined_at: u64,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").field("id", &self.my_id).field("standing", &self.standing()).finish()
    }
}

impl Membership {
    pub fn new(raft: Raft, my_id: NodeId, promote_lag: u64, joined_at: u64) -> Membership {
        Membership {
            raft,
            my_id,
            change: tokio::sync::Mutex::new(()),
            promote_lag,
            standing: AtomicU8::new(0),
            told_removed: Default::default(),
            joined_at,
        }
    }

    /// This node's place in the membership it holds.
    pub fn standing(&self) -> Standing {
        Standing::from_u8(self.standing.load(Ordering::Relaxed))
    }

    /// Records that the leader's membership no longer names this node, and stops it campaigning.
    pub fn mark_removed(&self) {
        if !self.told_removed.swap(true, Ordering::Relaxed) {
            self.standing.store(Standing::Removed as u8, Ordering::Relaxed);
            // A voter removed while it was away still holds a membership that names it a voter.
            self.raft.runtime_config().elect(false);
            warn!(
                "the leader no longer lists this node: it was removed from the cluster; stop it, and wipe its \
                 directory before it joins again"
            );
        }
    }

    /// The members with their roles; match indexes when this node leads.
    pub fn members(&self) -> Vec<Member> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(&id, addr)| {
                let matched = if id == self.my_id {
                    m.last_log_index
                } else {
                    m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten()).map(|l| l.index)
                };
                Member { id, addr: addr.clone(), voter: voters.contains(&id), matched }
            })
            .collect()
    }

    /// Whether the membership this node holds is a joint configuration (a change under way).
    pub fn is_joint(&self) -> bool {
        self.raft.metrics().borrow().membership_config.membership().get_joint_config().len() > 1
    }

    fn leading(&self) -> Result<openraft::RaftMetrics<NodeId, NodeAddr>, MembershipError> {
        let m = self.raft.metrics().borrow().clone();
        if m.state != ServerState::Leader {
            return Err(MembershipError::NotLeader);
        }
        Ok(m)
    }

    /// Starts a change concerning member `id`: the one-change-at-a-time lock, and the leader's
    /// metrics once it holds it (an error when this node does not lead or `id` is no member).
    async fn change_of(
        &self,
        id: NodeId,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, openraft::RaftMetrics<NodeId, NodeAddr>), MembershipError> {
        let one = self.change.lock().await;
        let m = self.leading()?;
        if m.membership_config.membership().get_node(&id).is_none() {
            return Err(MembershipError::NotMember(id));
        }
        Ok((one, m))
    }

    /// Adds a node as a learner; `id` none picks one above every member's. Returns its id and the
    /// log index of the membership that names it (what a joining node holds before that index
    /// is history, maybe of an earlier node with its id). Adding the same learner at the same
    /// address again answers the same (a joining node that restarted asks again); a voter is
    /// refused (it would come back without its log and votes).
    pub async fn add(&self, id: Option<NodeId>, addr: NodeAddr) -> Result<(NodeId, u64), MembershipError> {
        let _one = self.change.lock().await;
        let m = self.leading()?;
        let nodes: BTreeMap<NodeId, NodeAddr> =
            m.membership_config.membership().nodes().map(|(&i, a)| (i, a.clone())).collect();
        let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        for (&other, known) in &nodes {
            if *known == addr && id.is_none_or(|id| id == other) {
                // A voter asking again has lost its data (its votes with it): it must be removed
                // and join afresh. A learner asking again is a joining node that restarted.
                if voters.contains(&other) {
                    return Err(MembershipError::AlreadyMember { id: other, at: known.client.clone() });
                }
                return Ok((other, m.membership_config.log_id().map_or(0, |l| l.index)));
            }
            if Some(other) != id && (known.client == addr.client || known.bus == addr.bus) {
                let taken = if known.bus == addr.bus { &addr.bus } else { &addr.client };
                return Err(MembershipError::AddressTaken { addr: taken.clone(), id: other });
            }
        }
        let id = id.unwrap_or_else(|| nodes.keys().max().map_or(1, |&max| max + 1));
        if let Some(known) = nodes.get(&id) {
            return Err(MembershipError::AlreadyMember { id, at: known.client.clone() });
        }
        info!(node = id, client = %addr.client, bus = %addr.bus, "adding a node as a learner");
        let added = tokio::time::timeout(CHANGE_TIMEOUT, self.raft.add_learner(id, addr, false)).await;
        let written = outcome(added)?;
        Ok((id, written.log_id.index))
    }

    /// Makes a learner a voter, if it is at most the promotion lag behind the leader's log.
    pub async fn promote(&self, id: NodeId) -> Result<(), MembershipError> {
        let (_one, m) = self.change_of(id).await?;
        let membership = m.membership_config.membership();
        if membership.voter_ids().any(|v| v == id) {
            return Err(MembershipError::AlreadyVoter(id));
        }
        let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten()).map_or(0, |l| l.index);
        let behind = m.last_log_index.unwrap_or(0).saturating_sub(matched);
        if behind > self.promote_lag {
            return Err(MembershipError::Behind { id, behind, max: self.promote_lag });
        }
        info!(node = id, behind, "promoting a learner to voter");
        self.change_voters(ChangeMembers::AddVoterIds([id].into()), false).await
    }

    /// Removes nodes, in one change of the voters (joint consensus: a majority of the old voters
    /// and one of the new must accept it). Voters are demoted to learners first (so that they
    /// learn they no longer vote), then dropped. With the leader among them, every node named is
    /// dropped at once, learners first, and the leader steps down once that commits.
    pub async fn remove(&self, ids: &BTreeSet<NodeId>) -> Result<(), MembershipError> {
        let _one = self.change.lock().await;
        let m = self.leading()?;
        let membership = m.membership_config.membership();
        if let Some(&id) = ids.iter().find(|&id| membership.get_node(id).is_none()) {
            return Err(MembershipError::NotMember(id));
        }
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leaving: BTreeSet<NodeId> = voters.intersection(ids).copied().collect();
        if leaving.len() == voters.len() {
            return Err(match voters.first() {
                Some(&only) if voters.len() == 1 => MembershipError::LastVoter(only),
                _ => MembershipError::NoVoterLeft(leaving.into_iter().collect()),
            });
        }
        if leaving.is_empty() {
            info!(nodes = ?ids, "removing learners from the membership");
            return self.change_voters(ChangeMembers::RemoveNodes(ids.clone()), false).await;
        }
        if ids.contains(&self.my_id) {
            // openraft's leader keeps leading while it is any member, learner included: it is
            // dropped at once, and steps down once that commits (the others then elect one).
            let learners: BTreeSet<NodeId> = ids.difference(&leaving).copied().collect();
            if !learners.is_empty() {
                self.change_voters(ChangeMembers::RemoveNodes(learners), false).await?;
            }
            info!(voters = ?leaving, "removing this node, the leader: it steps down once the removal commits");
            return self.change_voters(ChangeMembers::RemoveVoters(leaving), false).await;
        }
        info!(voters = ?leaving, "removing voters: demoting them to learners first");
        self.change_voters(ChangeMembers::RemoveVoters(leaving.clone()), true).await?;
        for &id in &leaving {
            self.await_demotion_seen(id).await;
        }
        info!(nodes = ?ids, "removing nodes from the membership");
        self.change_voters(ChangeMembers::RemoveNodes(ids.clone()), false).await
    }

    /// Waits (a little) until the demoted node has the configuration that demotes it.
    async fn await_demotion_seen(&self, id: NodeId) {
        let mut metrics = self.raft.metrics();
        let seen = metrics.wait_for(|m| {
            let config_at = m.membership_config.log_id().map_or(0, |l| l.index);
            let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten()).map_or(0, |l| l.index);
            matched >= config_at || m.state != ServerState::Leader
        });
        if tokio::time::timeout(DEMOTION_GRACE, seen).await.is_err() {
            warn!(node = id, "the demoted node did not receive its demotion (down?); removing it anyway");
        }
    }

    async fn change_voters(
        &self,
        changes: ChangeMembers<NodeId, NodeAddr>,
        retain: bool,
    ) -> Result<(), MembershipError> {
        outcome(tokio::time::timeout(CHANGE_TIMEOUT, self.raft.change_membership(changes, retain)).await).map(|_| ())
    }

    /// On the leader: finishes a joint configuration nobody is changing (its proposer lost
    /// leadership between the two steps), towards the configuration it was changing to.
    /// Runs until Raft stops.
    pub async fn finish_interrupted(self: Arc<Self>) {
        let mut metrics = self.raft.metrics();
        loop {
            let target = {
                let m = metrics.borrow_and_update();
                let joint = m.membership_config.membership().get_joint_config();
                (m.state == ServerState::Leader && joint.len() > 1).then(|| joint[joint.len() - 1].clone())
            };
            if let Some(target) = target {
                if let Ok(_one) = self.change.try_lock() {
                    warn!(voters = ?target, "finishing a membership change a previous leader left joint");
                    let changes = ChangeMembers::ReplaceAllVoters(target);
                    match self.change_voters(changes, true).await {
                        Ok(()) => info!("the interrupted membership change is finished"),
                        Err(MembershipError::InProgress) => tokio::time::sleep(Duration::from_millis(50)).await,
                        Err(e) => {
                            warn!(error = %e, "could not finish the interrupted membership change yet");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    continue;
                }
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    }

    /// Follows the membership this node holds: keeps `allowed` to its members, records this node's
    /// standing (logging each change of it), and calls `joined` the first time the membership
    /// names this node. `was_member`: the node was a member before this start (a node that
    /// joined replays memberships without itself first: that is not a removal).
    /// Runs until Raft stops.
    pub async fn follow(self: Arc<Self>, allowed: Arc<Allowed>, was_member: bool, joined: impl Fn() + Send + 'static) {
        let mut metrics = self.raft.metrics();
        let mut known: Option<BTreeSet<NodeId>> = None;
        let mut member = was_member;
        // Nodes just dropped from the membership, still heard for a moment (a removed leader
        // sends the commit of its own removal after the others have the new configuration).
        let mut leaving: BTreeMap<NodeId, tokio::time::Instant> = BTreeMap::new();
        // The metrics change on every apply; the membership only when its log id does (or when
        // this node is told it was removed): the rest of the loop runs only then.
        let mut seen = None;
        loop {
            let key = {
                let m = metrics.borrow_and_update();
                (*m.membership_config.log_id(), self.told_removed.load(Ordering::Relaxed))
            };
            if seen.as_ref() == Some(&key) && leaving.is_empty() {
                if metrics.changed().await.is_err() {
                    return;
                }
                continue;
            }
            seen = Some(key);
            let (ids, standing, at, names_me) = {
                let m = metrics.borrow_and_update();
                let membership = m.membership_config.membership();
                let ids: BTreeSet<NodeId> = membership.nodes().map(|(&id, _)| id).collect();
                crate::broken::membership_is(membership.get_joint_config());
                let at = m.membership_config.log_id().map_or(0, |l| l.index);
                let names_me = ids.contains(&self.my_id) && at >= self.joined_at;
                let standing = if ids.is_empty() || (!member && !names_me) {
                    Standing::Joining
                } else if membership.voter_ids().any(|v| v == self.my_id) {
                    Standing::Voter
                } else if ids.contains(&self.my_id) {
                    Standing::Learner
                } else {
                    Standing::Removed
                };
                let standing = match standing {
                    _ if self.told_removed.load(Ordering::Relaxed) => Standing::Removed,
                    s => s,
                };
                (ids, standing, at, names_me)
            };
            if !member && names_me {
                member = true;
                joined();
                // Replaying history, a joining node holds memberships of before its time, where
                // its id may be a voter's (a removed node's): it campaigns only from now on.
                if !self.told_removed.load(Ordering::Relaxed) {
                    self.raft.runtime_config().elect(true);
                }
            }
            if known.as_ref() != Some(&ids) && !ids.is_empty() {
                let now = tokio::time::Instant::now();
                for gone in known.iter().flatten().filter(|id| !ids.contains(id)) {
                    leaving.insert(*gone, now);
                }
                leaving.retain(|id, _| !ids.contains(id));
                known = Some(ids);
            }
            leaving.retain(|_, since| since.elapsed() < REMOVED_GRACE);
            // Until the membership names this node, it is history (see above): anyone of the
            // cluster may send.
            if let Some(ids) = known.as_ref().filter(|_| member) {
                allowed.set(ids.iter().chain(leaving.keys()).copied().collect());
            }
            let was = self.standing.swap(standing as u8, Ordering::Relaxed);
            if was != standing as u8 {
                let members = known.as_ref().map(|k| format!("{k:?}")).unwrap_or_default();
                match standing {
                    Standing::Joining => info!("waiting for the leader's first message"),
                    Standing::Voter => info!(index = at, %members, "this node is a voter"),
                    Standing::Learner => {
                        info!(index = at, %members, "this node is a learner: it replicates but does not vote")
                    }
                    Standing::Removed => warn!(
                        index = at,
                        %members,
                        "this node was removed from the cluster: it no longer votes or campaigns; \
                         stop it, and wipe its directory before it joins again"
                    ),
                }
            }
            if leaving.is_empty() {
                if metrics.changed().await.is_err() {
                    return;
                }
            } else {
                tokio::select! {
                    changed = metrics.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// What openraft answers a membership call.
type Answer<T> = Result<T, RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>>;

/// What a membership call's outcome (within its time limit) means for the caller.
fn outcome<T>(r: Result<Answer<T>, tokio::time::error::Elapsed>) -> Result<T, MembershipError> {
    match r {
        Err(_) => Err(MembershipError::Incomplete(format!(
            "not committed within {} s (no quorum?); it may still commit",
            CHANGE_TIMEOUT.as_secs()
        ))),
        Ok(Ok(t)) => Ok(t),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(MembershipError::NotLeader),
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => Err(match e {
            ChangeMembershipError::InProgress(_) => MembershipError::InProgress,
            ChangeMembershipError::LearnerNotFound(e) => MembershipError::NotMember(e.node_id),
            ChangeMembershipError::EmptyMembership(_) => MembershipError::Incomplete(e.to_string()),
        }),
        Ok(Err(RaftError::Fatal(e))) => Err(MembershipError::Incomplete(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standing_round_trips() {
        for s in [Standing::Joining, Standing::Voter, Standing::Learner, Standing::Removed] {
            assert_eq!(Standing::from_u8(s as u8), s);
        }
    }
}

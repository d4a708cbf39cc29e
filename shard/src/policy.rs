//! Pool member selection (RFC 5356), with RSPLIB's model where the RFC is
//! loose (spec digest §6; RSPLIB `poolpolicy-template_impl.h`).
//!
//! Two families, as in RSPLIB:
//!
//! * **Ordered** (RR, WRR, PRIO, LU, LUD, PLU, PLUD, LU-DPF, LUD-DPF): the
//!   pool's PEs are kept in an order given by a policy key and, as the last
//!   tie-break, a per-pool sequence number. A resolution returns the first
//!   `n` PEs of that order; then the first `max_increment` of them (by
//!   default one) get a fresh sequence number (moving them behind their
//!   equals) and their policy counters advance. With the default this is the
//!   RFC's round robin: the head advances by one PE per request.
//! * **Weighted** (RAND, WRAND, RLU, RPLU, RLUD, RPLUD, WRAND-DPF): `n`
//!   distinct PEs drawn at random without replacement, each with probability
//!   proportional to its weight (RAND: 1; WRAND: its weight; the randomized
//!   least-used family: `0xFFFFFFFF` minus its load terms, at least 1).
//!
//! Deliberate differences from RSPLIB 3.4.4, all towards RFC 5356, unless
//! [`Compat::Rsplib`] is chosen (then RSPLIB's answers are reproduced
//! exactly for every deterministic policy):
//!
//! * RSPLIB runs a policy's update hook twice per selection (once explicitly,
//!   once again when it re-links the PE into its selection tree), once when a
//!   PE is added and once when a re-registration changes its values. We run it
//!   once per selection and never on add, so a new PE starts with degradation
//!   0 and a WRR PE is chosen `weight` times per round, as RFC 5356 §4.1.2 and
//!   §4.2.2 describe.
//! * RSPLIB never raises the degradation of its randomized degradation
//!   policies (0xB0001002, 0xB0001004); we raise it like LUD's, which is what
//!   their names promise.

use rserpool_wire::{Policy, PolicyType};

/// Which selection mechanism a policy uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// First `n` PEs of a sort order.
    Ordered,
    /// Weighted random draws without replacement.
    Weighted,
}

/// Which selection semantics to follow where RFC 5356 and RSPLIB differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compat {
    /// RFC 5356: counters advance once per selection, start at zero.
    #[default]
    Rfc,
    /// RSPLIB 3.4.4, bug for bug (see the module documentation).
    Rsplib,
}

/// The largest load / weight value (100 %).
pub const MAX_VALUE: u64 = 0xffff_ffff;

/// The per-PE state a policy reads and updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyState {
    /// The policy's fields as registered, in wire order.
    pub vals: [u32; 4],
    /// Sequence number: the last tie-break of every ordered policy.
    pub seq: u64,
    /// WRR: the round this PE is in.
    pub round: u32,
    /// WRR: selections left in this round.
    pub virtual_counter: u32,
    /// Degradation policies: accumulated load degradation since the last
    /// (re-)registration.
    pub degradation: u32,
}

fn sat(v: u64) -> u64 {
    v.min(MAX_VALUE)
}

/// The policy of a pool, reduced to what selection needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind(pub PolicyType);

impl Kind {
    /// The kind of a known policy.
    pub fn of(p: &Policy) -> Self {
        Self(p.policy_type())
    }

    /// The selection family.
    pub fn family(self) -> Family {
        match self.0 {
            PolicyType::RANDOM
            | PolicyType::WEIGHTED_RANDOM
            | PolicyType::RANDOMIZED_LEAST_USED
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED
            | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
            | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
            | PolicyType::WEIGHTED_RANDOM_DPF => Family::Weighted,
            _ => Family::Ordered,
        }
    }

    /// How many of the selected PEs advance their state per request when the
    /// operator did not say (RSPLIB's per-policy default: 0 for RAND, WRAND
    /// and WRAND-DPF, whose state never changes, 1 for all others).
    pub fn default_max_increment(self) -> usize {
        match self.0 {
            PolicyType::RANDOM | PolicyType::WEIGHTED_RANDOM | PolicyType::WEIGHTED_RANDOM_DPF => 0,
            _ => 1,
        }
    }

    fn uses_degradation(self) -> bool {
        matches!(
            self.0,
            PolicyType::LEAST_USED_DEGRADATION
                | PolicyType::PRIORITY_LEAST_USED_DEGRADATION
                | PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION
                | PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION
                | PolicyType::LEAST_USED_DEGRADATION_DPF
        )
    }

    /// Ordered family: the primary sort key (ascending; the sequence number
    /// breaks ties).
    pub fn key(self, s: &PolicyState) -> u64 {
        let [a, b, c, d] = s.vals.map(u64::from);
        let deg = u64::from(s.degradation);
        match self.0 {
            PolicyType::WEIGHTED_ROUND_ROBIN => {
                (u64::from(s.round) << 32) | u64::from(s.virtual_counter)
            }
            // Higher priority first.
            PolicyType::PRIORITY => MAX_VALUE - a,
            PolicyType::LEAST_USED => a,
            PolicyType::LEAST_USED_DEGRADATION => sat(a + deg),
            PolicyType::PRIORITY_LEAST_USED => sat(a + b),
            PolicyType::PRIORITY_LEAST_USED_DEGRADATION => sat(a + b + deg),
            // load + distance * load_dpf / 0xFFFFFFFF * 0xFFFFFFFF.
            PolicyType::LEAST_USED_DPF => sat(a + b * c),
            PolicyType::LEAST_USED_DEGRADATION_DPF => sat(a + deg + c * d),
            // Round robin (and anything ordered without a key).
            _ => 0,
        }
    }

    /// Weighted family: the PE's weight in the draw (0 = never drawn).
    pub fn weight(self, s: &PolicyState) -> u64 {
        let [a, b, c, _] = s.vals.map(u64::from);
        let deg = u64::from(s.degradation);
        let remaining = |used: u64| MAX_VALUE.saturating_sub(used).max(1);
        match self.0 {
            PolicyType::RANDOM => 1,
            PolicyType::WEIGHTED_RANDOM => a,
            PolicyType::RANDOMIZED_LEAST_USED => remaining(a),
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED => remaining(a + b),
            PolicyType::RANDOMIZED_LEAST_USED_DEGRADATION => remaining(a + deg),
            PolicyType::RANDOMIZED_PRIORITY_LEAST_USED_DEGRADATION => remaining(a + b + deg),
            PolicyType::WEIGHTED_RANDOM_DPF => {
                // weight - round(weight * distance * weight_dpf / 0xFFFFFFFF)
                let penalty = (u128::from(a) * u128::from(c) * u128::from(b)
                    + u128::from(MAX_VALUE / 2))
                    / u128::from(MAX_VALUE);
                let v = i128::from(a) - i128::try_from(penalty).unwrap_or(i128::MAX);
                if v < 0 {
                    1
                } else {
                    u64::try_from(v).unwrap_or(MAX_VALUE).min(MAX_VALUE)
                }
            }
            _ => 1,
        }
    }

    /// State of a PE joining the pool. `current_round` is the round of the
    /// pool's first PE (WRR starts newcomers in the current round).
    pub fn init(self, vals: [u32; 4], seq: u64, current_round: u32) -> PolicyState {
        let mut s = PolicyState {
            vals,
            seq,
            ..PolicyState::default()
        };
        if self.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
            s.round = current_round;
            s.virtual_counter = vals[0];
        }
        s
    }

    /// A re-registration changed the values: adopt them and, like RSPLIB,
    /// reset the degradation and clamp the WRR counter to the new weight.
    /// Returns whether the selection order may have changed.
    pub fn update_values(self, s: &mut PolicyState, vals: [u32; 4]) -> bool {
        if s.vals == vals && s.degradation == 0 {
            return false;
        }
        s.vals = vals;
        s.degradation = 0;
        if self.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
            s.virtual_counter = s.virtual_counter.min(vals[0]);
        }
        true
    }

    /// The PE was selected and is among the first `max_increment`: it gets a
    /// new sequence number and its policy counters advance.
    pub fn on_selected(self, s: &mut PolicyState, new_seq: u64, compat: Compat) {
        s.seq = new_seq;
        self.advance(s, compat);
        if compat == Compat::Rsplib {
            // RSPLIB applies its update hook a second time when it re-links.
            self.advance(s, compat);
        }
    }

    /// RSPLIB runs its update hook when a PE is linked into the selection
    /// order (on add, and on re-registration with changed values).
    pub fn on_linked(self, s: &mut PolicyState, compat: Compat) {
        if compat == Compat::Rsplib {
            self.advance(s, compat);
        }
    }

    /// The policy's update hook: WRR counts down, degradation grows.
    fn advance(self, s: &mut PolicyState, compat: Compat) {
        if compat == Compat::Rsplib && self.family() == Family::Weighted {
            // RSPLIB's hook for the weighted family only recomputes the value.
            return;
        }
        if self.0 == PolicyType::WEIGHTED_ROUND_ROBIN {
            if s.virtual_counter > 1 {
                s.virtual_counter -= 1;
            } else {
                s.round = s.round.wrapping_add(1);
                s.virtual_counter = s.vals[0];
            }
        }
        if self.uses_degradation() {
            s.degradation = u32::try_from(sat(u64::from(s.degradation) + u64::from(s.vals[1])))
                .unwrap_or(u32::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(vals: [u32; 4]) -> PolicyState {
        PolicyState {
            vals,
            ..PolicyState::default()
        }
    }

    #[test]
    fn families_follow_rsplib() {
        for &t in Policy::ALL_TYPES {
            let k = Kind(t);
            let weighted = matches!(
                t.0,
                3 | 4 | 0x4000_0004 | 0xb000_1001 | 0xb000_1002 | 0xb000_1004 | 0xb000_2001
            );
            assert_eq!(k.family() == Family::Weighted, weighted, "{t}");
        }
    }

    #[test]
    fn keys_and_weights_saturate() {
        let max = u32::MAX;
        assert_eq!(
            Kind(PolicyType::PRIORITY_LEAST_USED).key(&st([max, 5, 0, 0])),
            MAX_VALUE
        );
        assert_eq!(
            Kind(PolicyType::PRIORITY).key(&st([7, 0, 0, 0])),
            MAX_VALUE - 7
        );
        assert_eq!(
            Kind(PolicyType::RANDOMIZED_LEAST_USED).weight(&st([max, 0, 0, 0])),
            1
        );
        assert_eq!(
            Kind(PolicyType::RANDOMIZED_LEAST_USED).weight(&st([0, 0, 0, 0])),
            MAX_VALUE
        );
        assert_eq!(
            Kind(PolicyType::WEIGHTED_RANDOM).weight(&st([0, 0, 0, 0])),
            0
        );
        // WRAND-DPF: full distance penalty removes the whole weight (-> 0).
        assert_eq!(
            Kind(PolicyType::WEIGHTED_RANDOM_DPF).weight(&st([1000, max, 1, 0])),
            0
        );
        assert_eq!(
            Kind(PolicyType::WEIGHTED_RANDOM_DPF).weight(&st([1000, 0, 9, 0])),
            1000
        );
    }

    #[test]
    fn wrr_counts_down_then_moves_to_next_round() {
        let k = Kind(PolicyType::WEIGHTED_ROUND_ROBIN);
        let mut s = k.init([3, 0, 0, 0], 0, 5);
        assert_eq!((s.round, s.virtual_counter), (5, 3));
        k.on_selected(&mut s, 1, Compat::Rfc);
        k.on_selected(&mut s, 2, Compat::Rfc);
        assert_eq!((s.round, s.virtual_counter), (5, 1));
        k.on_selected(&mut s, 3, Compat::Rfc);
        assert_eq!((s.round, s.virtual_counter, s.seq), (6, 3, 3));
    }

    #[test]
    fn degradation_grows_per_selection_and_resets_on_update() {
        let k = Kind(PolicyType::LEAST_USED_DEGRADATION);
        let mut s = k.init([100, 10, 0, 0], 0, 0);
        assert_eq!(k.key(&s), 100);
        k.on_selected(&mut s, 1, Compat::Rfc);
        k.on_selected(&mut s, 2, Compat::Rfc);
        assert_eq!(k.key(&s), 120);
        k.on_selected(&mut s, 3, Compat::Rsplib);
        assert_eq!(k.key(&s), 140);
        assert!(k.update_values(&mut s, [100, 10, 0, 0]));
        assert_eq!(k.key(&s), 100);
        assert!(!k.update_values(&mut s, [100, 10, 0, 0]));
    }
}

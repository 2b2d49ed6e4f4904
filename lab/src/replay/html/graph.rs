//! The evidence graph of one cluster: a sample of its accounts on the
//! left, the strongest values the cluster shares and the behaviour crowds
//! its accounts are in on the right, an edge where an account presents a
//! value (from the trace, read again) or is in a crowd (from the guard).

use super::clusters::{colour_of, ClusterPoint, Kind, GREY};
use super::{clip, escape, role_text};
use crate::replay::evaluation::Role;
use crate::replay::{Replayer, TraceLine};
use ringfence::link::{ipv4_prefix, SharedValue};
use std::fmt::Write;

/// Accounts drawn per cluster.
const MAX_ACCOUNTS: usize = 12;
/// Shared values drawn per cluster.
const MAX_VALUES: usize = 8;

/// A sampled account.
pub(super) struct AccountNode {
    pub(super) name: String,
    role: Kind,
    role_text: String,
    /// Whether it presents each of the cluster's drawn values.
    presents: Vec<bool>,
    /// The crowd (index into `crowds`) whose verdict applies to it.
    crowd: Option<usize>,
    /// Its own behaviour's suspicion, where recorded.
    suspicion: Option<f64>,
}

/// A crowd some sampled accounts are in.
struct CrowdNode {
    id: u64,
    kind: String,
    value: String,
    score: f64,
    members: f64,
    accounts: f64,
}

/// One cluster's evidence (see the module docs).
pub(super) struct ClusterEvidence {
    id: u64,
    size: u32,
    score: f64,
    flagged: bool,
    kind: Kind,
    campaign: u64,
    benign: u64,
    pub(super) accounts: Vec<AccountNode>,
    values: Vec<SharedValue>,
    /// Shared values not drawn.
    more_values: usize,
    crowds: Vec<CrowdNode>,
}

impl ClusterEvidence {
    /// What the guard says of `p`'s cluster; `None` if it no longer knows
    /// the sample account.
    pub(super) fn gather(r: &Replayer, p: &ClusterPoint) -> Option<ClusterEvidence> {
        let guard = r.guard();
        let x = guard.explain(&p.sample)?;
        let mut names = vec![x.account.clone()];
        names.extend(x.members.iter().cloned());
        names.truncate(MAX_ACCOUNTS);
        let values = strongest(&x.shared, MAX_VALUES);
        let more_values = x.shared.len().saturating_sub(values.len());
        let tally = r.tally();
        let mut crowds: Vec<CrowdNode> = Vec::new();
        let accounts = names
            .into_iter()
            .map(|name| {
                let role = tally.find(&name).map_or(Role::Unknown, |a| tally.role(a));
                let own = if name == x.account {
                    Some(x.clone())
                } else {
                    guard.explain(&name)
                };
                let crowd = own.as_ref().and_then(|e| e.crowd.as_ref()).map(|c| {
                    match crowds.iter().position(|k| k.id == c.id) {
                        Some(i) => i,
                        None => {
                            crowds.push(CrowdNode {
                                id: c.id,
                                kind: c.kind.clone(),
                                value: c.value.clone(),
                                score: c.judgement.score,
                                members: c.judgement.members,
                                accounts: c.judgement.accounts,
                            });
                            crowds.len() - 1
                        }
                    }
                });
                AccountNode {
                    role: match role {
                        Role::Campaign(op) => Kind::Operation(op.to_string()),
                        Role::Benign(c) => Kind::Cohort(c.to_string()),
                        Role::Unknown => Kind::Unlabelled,
                    },
                    role_text: role_text(role),
                    presents: vec![false; values.len()],
                    crowd,
                    suspicion: own.and_then(|e| e.behaviour).map(|b| b.suspicion),
                    name,
                }
            })
            .collect();
        Some(ClusterEvidence {
            id: p.id,
            size: p.size,
            score: p.score,
            flagged: p.flagged,
            kind: p.kind.clone(),
            campaign: p.campaign,
            benign: p.benign,
            accounts,
            values,
            more_values,
            crowds,
        })
    }

    /// Notes the drawn values that account `ai`'s request `line` presents.
    pub(super) fn observe(&mut self, ai: usize, line: &TraceLine<'_>) {
        let a = &mut self.accounts[ai];
        for (vi, v) in self.values.iter().enumerate() {
            if !a.presents[vi] && presents(line, v) {
                a.presents[vi] = true;
            }
        }
    }

    /// The cluster's article: a heading, the graph, what was left out.
    pub(super) fn write_html(
        &self,
        o: &mut String,
        colours: &[(Kind, &'static str)],
        traced: bool,
    ) -> std::fmt::Result {
        let id = format!("{:016x}", self.id);
        writeln!(
            o,
            "<article class=\"cluster\" data-cluster=\"{id}\">\n<h3>Cluster {id}: {} accounts, score {:.2}{}</h3>",
            self.size,
            self.score,
            if self.flagged { ", flagged" } else { "" }
        )?;
        let what = match &self.kind {
            Kind::Operation(op) => format!(
                "{} campaign accounts (most of operation {}), {} benign",
                self.campaign, op, self.benign
            ),
            Kind::Cohort(c) => format!("{} benign accounts (most of cohort {c})", self.benign),
            Kind::Unlabelled => "no labels".to_string(),
        };
        writeln!(o, "<p class=\"note\">{}</p>", escape(&what))?;
        o.push_str(&self.svg(colours, traced));
        let shown = self.accounts.len() as u64;
        let left = u64::from(self.size).saturating_sub(shown);
        let mut notes = vec![format!(
            "{shown} of its {} accounts shown ({left} left out); {} of the {} values its accounts share shown ({} left out).",
            self.size,
            self.values.len(),
            self.values.len() + self.more_values,
            self.more_values
        )];
        notes.push(if traced {
            "Edges: the account presented the value in the trace (derived values such as an address's /24 and composites worked out as the guard does); dashed, the behaviour crowd whose verdict applies to it. Thicker edges weigh more.".to_string()
        } else {
            "Which account presents which value is not known here (the trace was read from standard input and could not be read again): the values are the cluster's as a whole. Dashed edges: the behaviour crowd whose verdict applies to the account.".to_string()
        });
        for n in notes {
            writeln!(o, "<p class=\"note\">{}</p>", escape(&n))?;
        }
        writeln!(o, "</article>")
    }

    /// The graph as SVG.
    fn svg(&self, colours: &[(Kind, &'static str)], traced: bool) -> String {
        const W: f64 = 960.0;
        const ROW: f64 = 30.0;
        const TOP: f64 = 44.0;
        const AX: f64 = 250.0;
        const VX: f64 = 470.0;
        let right = self.values.len() + self.crowds.len();
        let rows = self.accounts.len().max(right).max(1);
        let h = TOP + ROW * rows as f64 + 10.0;
        let span = ROW * rows as f64;
        let y_of = |i: usize, n: usize| TOP + span * (i as f64 + 0.5) / n.max(1) as f64;
        let mut o = String::new();
        let _ = write!(
            o,
            "<svg class=\"graph\" viewBox=\"0 0 {W} {h:.0}\" role=\"img\" aria-label=\"evidence graph of cluster {:016x}\">",
            self.id
        );
        let _ = write!(
            o,
            "<text x=\"{AX}\" y=\"20\" text-anchor=\"end\" font-size=\"13\" font-weight=\"600\">accounts ({} of {})</text>\
             <text x=\"{VX}\" y=\"20\" font-size=\"13\" font-weight=\"600\">shared values (weight, ~accounts){}</text>",
            self.accounts.len(),
            self.size,
            if self.crowds.is_empty() {
                ""
            } else {
                " and behaviour crowds"
            }
        );
        // Edges first, under the nodes.
        let mut edges = 0;
        let _ = write!(o, "<g class=\"edges\">");
        for (ai, a) in self.accounts.iter().enumerate() {
            let ya = y_of(ai, self.accounts.len());
            for (vi, v) in self.values.iter().enumerate() {
                if !a.presents[vi] {
                    continue;
                }
                edges += 1;
                let yv = y_of(vi, right);
                let _ = write!(
                    o,
                    "<path class=\"edge\" d=\"M{AX} {ya:.1} C{:.0} {ya:.1} {:.0} {yv:.1} {VX} {yv:.1}\" stroke=\"#4a6fa5\" stroke-opacity=\"0.55\" stroke-width=\"{:.2}\" fill=\"none\"><title>{} presents {} (weight {:.2})</title></path>",
                    AX + 80.0,
                    VX - 80.0,
                    0.8 + 4.0 * v.weight.clamp(0.0, 1.0),
                    escape(&a.name),
                    escape(&format!("{} {}", v.kind, v.value)),
                    v.weight
                );
            }
            if let Some(ci) = a.crowd {
                edges += 1;
                let yc = y_of(self.values.len() + ci, right);
                let _ = write!(
                    o,
                    "<path class=\"edge crowd-edge\" d=\"M{AX} {ya:.1} C{:.0} {ya:.1} {:.0} {yc:.1} {VX} {yc:.1}\" stroke=\"#8e44ad\" stroke-opacity=\"0.6\" stroke-width=\"1.5\" stroke-dasharray=\"5 4\" fill=\"none\"><title>{} is in this crowd</title></path>",
                    AX + 80.0,
                    VX - 80.0,
                    escape(&a.name)
                );
            }
        }
        let _ = write!(o, "</g>");
        let _ = write!(o, "<g class=\"accounts\">");
        for (ai, a) in self.accounts.iter().enumerate() {
            let y = y_of(ai, self.accounts.len());
            let colour = colour_of(colours, &a.role);
            let colour = if colour == GREY && a.role != Kind::Unlabelled {
                match a.role {
                    Kind::Operation(_) => "#d62728",
                    _ => "#1f77b4",
                }
            } else {
                colour
            };
            let suspicion = a
                .suspicion
                .map_or(String::new(), |s| format!(", behaviour suspicion {s:.2}"));
            let _ = write!(
                o,
                "<g class=\"account\" data-account=\"{}\"><title>{} ({}{})</title><circle cx=\"{AX}\" cy=\"{y:.1}\" r=\"6\" fill=\"{colour}\" stroke=\"#fff\" stroke-width=\"1.5\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{}</text></g>",
                escape(&a.name),
                escape(&a.name),
                escape(&a.role_text),
                suspicion,
                AX - 12.0,
                y + 4.0,
                escape(&clip(&a.name, 32))
            );
        }
        let _ = write!(o, "</g><g class=\"values\">");
        for (vi, v) in self.values.iter().enumerate() {
            let y = y_of(vi, right);
            let size = 7.0 + 6.0 * v.weight.clamp(0.0, 1.0);
            let _ = write!(
                o,
                "<g class=\"value\" data-kind=\"{}\" data-value=\"{}\" data-weight=\"{:.2}\"><title>{} {} — ~{:.0} accounts present it, weight {:.2}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{size:.1}\" height=\"{size:.1}\" rx=\"2\" fill=\"#4a6fa5\"/><text x=\"{:.0}\" y=\"{:.1}\" font-size=\"12\"><tspan font-weight=\"600\">{}</tspan> {} <tspan fill=\"#5b6474\">({:.2}, ~{:.0})</tspan></text></g>",
                escape(&v.kind),
                escape(&v.value),
                v.weight,
                escape(&v.kind),
                escape(&v.value),
                v.accounts,
                v.weight,
                VX - size / 2.0,
                y - size / 2.0,
                VX + 14.0,
                y + 4.0,
                escape(&clip(&v.kind, 22)),
                escape(&clip(&v.value, 34)),
                v.weight,
                v.accounts
            );
        }
        for (ci, c) in self.crowds.iter().enumerate() {
            let y = y_of(self.values.len() + ci, right);
            let _ = write!(
                o,
                "<g class=\"crowd\" data-kind=\"{}\"><title>crowd behind {} {}: ~{:.0} suspicious of ~{:.0} active accounts, crowd score {:.2}</title><circle cx=\"{VX}\" cy=\"{y:.1}\" r=\"7\" fill=\"#8e44ad\"/><text x=\"{:.0}\" y=\"{:.1}\" font-size=\"12\"><tspan font-weight=\"600\">crowd: {}</tspan> {} <tspan fill=\"#5b6474\">(score {:.2})</tspan></text></g>",
                escape(&c.kind),
                escape(&c.kind),
                escape(&c.value),
                c.members,
                c.accounts,
                c.score,
                VX + 14.0,
                y + 4.0,
                escape(&clip(&c.kind, 22)),
                escape(&clip(&c.value, 40)),
                c.score
            );
        }
        let _ = write!(o, "</g>");
        if !traced && !self.values.is_empty() {
            let _ = write!(
                o,
                "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#5b6474\">(who presents which value: not known)</text>",
                (AX + VX) / 2.0,
                TOP - 8.0
            );
        }
        let _ = writeln!(o, "<desc>{edges} edges</desc></svg>");
        o
    }
}

/// At most `n` of `shared` (strongest first): the strongest of each kind,
/// then the strongest of the rest, so that one kind's many values (a
/// campaign's cards) do not hide the others.
fn strongest(shared: &[SharedValue], n: usize) -> Vec<SharedValue> {
    let mut picked: Vec<usize> = Vec::new();
    for (i, v) in shared.iter().enumerate() {
        if picked.len() < n && !picked.iter().any(|&j| shared[j].kind == v.kind) {
            picked.push(i);
        }
    }
    for i in 0..shared.len() {
        if picked.len() >= n {
            break;
        }
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    picked.sort_unstable();
    picked.into_iter().map(|i| shared[i].clone()).collect()
}

/// Characters of a value the guard keeps for explanations.
const DISPLAY_CHARS: usize = 64;

/// A value's text as the guard keeps it.
fn display(value: &str) -> String {
    value.chars().take(DISPLAY_CHARS).collect()
}

/// The text the guard gives a derived or composite part of kind `name`
/// for `line`.
fn part_text(line: &TraceLine<'_>, name: &str) -> String {
    if name == "system" {
        return "(the system prompt)".to_string();
    }
    line.fingerprints
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| display(v))
        .or_else(|| {
            line.fingerprints
                .iter()
                .find(|(k, _)| k == "ip")
                .and_then(|(_, v)| ipv4_prefix(v))
                .map(|p| format!("{p}.0/24"))
        })
        .unwrap_or_default()
}

/// Whether `line` presents shared value `v`: the same kind and the text
/// the guard keeps for it (a value's first 64 characters; a derived one's
/// description, worked out the same way).
fn presents(line: &TraceLine<'_>, v: &SharedValue) -> bool {
    match v.kind.as_str() {
        "ip24" => line
            .fingerprints
            .iter()
            .filter(|(k, _)| k == "ip")
            .filter_map(|(_, ip)| ipv4_prefix(ip))
            .any(|p| v.value == format!("{p}.0/24")),
        "system" => line
            .system
            .as_deref()
            .is_some_and(|s| v.value == format!("a system prompt ({:.40}…)", s.trim())),
        "template" => line
            .prompt
            .as_deref()
            .is_some_and(|p| v.value == format!("a prompt template ({:.40}…)", p.trim())),
        kind if kind.contains('+') => {
            let parts: Vec<&str> = kind.split('+').collect();
            let all_there = parts.iter().all(|p| {
                if *p == "system" {
                    line.system.is_some()
                } else {
                    !part_text(line, p).is_empty()
                }
            });
            all_there
                && parts
                    .iter()
                    .map(|p| part_text(line, p))
                    .collect::<Vec<_>>()
                    .join(" + ")
                    == v.value
        }
        kind => line
            .fingerprints
            .iter()
            .any(|(k, val)| k == kind && display(val) == v.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn line<'a>(fps: &[(&'a str, &'a str)], system: Option<&'a str>) -> TraceLine<'a> {
        TraceLine {
            account: Cow::Borrowed("a"),
            fingerprints: fps
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                .collect(),
            system: system.map(Cow::Borrowed),
            prompt: Some(Cow::Borrowed(
                "  Think step by step about the following problem carefully",
            )),
            ..TraceLine::default()
        }
    }

    fn value(kind: &str, value: &str) -> SharedValue {
        SharedValue {
            kind: kind.to_string(),
            value: value.to_string(),
            accounts: 2.0,
            weight: 0.5,
        }
    }

    #[test]
    fn values_and_derived_values_are_recognised() {
        let l = line(
            &[
                ("ip", "203.0.113.7"),
                ("ja4", "t13d1516h2"),
                ("payment", "4111"),
            ],
            Some(" You are a helpful assistant for ACME. Answer briefly and well. "),
        );
        assert!(presents(&l, &value("payment", "4111")));
        assert!(!presents(&l, &value("payment", "4112")));
        assert!(!presents(&l, &value("device", "4111")));
        assert!(presents(&l, &value("ip24", "203.0.113.0/24")));
        assert!(presents(
            &l,
            &value("ja4+ip24", "t13d1516h2 + 203.0.113.0/24")
        ));
        assert!(presents(
            &l,
            &value(
                "system",
                "a system prompt (You are a helpful assistant for ACME. An…)"
            )
        ));
        assert!(presents(
            &l,
            &value(
                "template",
                "a prompt template (Think step by step about the following p…)"
            )
        ));
        assert!(presents(
            &l,
            &value("system+ja4", "(the system prompt) + t13d1516h2")
        ));
        let long = "x".repeat(100);
        let l = line(&[("user_agent", &long)], None);
        assert!(presents(&l, &value("user_agent", &"x".repeat(64))));
        assert!(!presents(
            &l,
            &value(
                "system+user_agent",
                &format!("(the system prompt) + {}", "x".repeat(64))
            )
        ));
    }

    #[test]
    fn every_kind_gets_a_place_before_a_kind_gets_two() {
        let mut shared: Vec<SharedValue> = (0..10)
            .map(|i| value("payment", &format!("c{i}")))
            .collect();
        shared.push(value("ip", "1.2.3.4"));
        shared.push(value("device", "d"));
        let picked = strongest(&shared, 4);
        let kinds: Vec<&str> = picked.iter().map(|v| v.kind.as_str()).collect();
        assert_eq!(kinds, ["payment", "payment", "ip", "device"]);
        assert_eq!(picked[1].value, "c1");
        assert_eq!(strongest(&shared[..2], 8).len(), 2);
    }
}

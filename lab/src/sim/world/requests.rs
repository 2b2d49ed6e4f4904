//! What each account sends and when: its requests, hour by hour, as
//! records.

use super::*;

/// The mean of the daily curve, so that `daily` is requests per day.
fn curve_mean() -> f64 {
    CURVE.iter().sum::<f64>() / 24.0
}

fn office(hour: i64) -> f64 {
    if (9..18).contains(&hour.rem_euclid(24)) {
        1.0
    } else {
        OFF_HOURS
    }
}

pub(super) fn to_ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

impl Profile {
    /// Generates the next hour (or bulk job) with any requests in it into
    /// `times`; false once past the end of the trace.
    fn refill(&mut self, w: &World) -> bool {
        while self.pos >= self.times.len() {
            self.times.clear();
            self.pos = 0;
            if let Timing::Batch = self.timing {
                if !self.next_job(w) {
                    return false;
                }
                continue;
            }
            let start = f64::from(self.hour) * 3600.0;
            if start >= w.horizon {
                return false;
            }
            self.generate_hour(start);
            self.hour += 1;
            let horizon = w.horizon;
            self.times.retain(|t| *t < horizon);
        }
        true
    }

    fn generate_hour(&mut self, start: f64) {
        let hour = i64::from(self.hour);
        let r = &mut self.rng;
        let per_hour = self.daily / 24.0;
        let uniform = |r: &mut Rng, mean: f64, times: &mut Vec<f64>| {
            for _ in 0..r.poisson(mean) {
                times.push(start + r.unit() * 3600.0);
            }
        };
        match self.timing {
            Timing::Diurnal(tz) => {
                let local = (hour + i64::from(tz)).rem_euclid(24) as usize;
                uniform(r, per_hour * CURVE[local] / curve_mean(), &mut self.times);
            }
            Timing::Office(tz) => {
                let mean = (9.0 + 15.0 * OFF_HOURS) / 24.0;
                let a = office(hour + i64::from(tz));
                uniform(r, per_hour * a / mean, &mut self.times);
            }
            Timing::Always => uniform(r, per_hour, &mut self.times),
            Timing::Bursts => {
                for _ in 0..r.poisson(per_hour) {
                    let window = r.below(3) as f64;
                    self.times.push(start + window * 1200.0 + r.unit() * 180.0);
                }
            }
            Timing::TopOfHour(jobs) => {
                for _ in 0..jobs {
                    if r.chance(JOB_RUNS) {
                        let u = r.unit();
                        self.times.push(start + 1.0 + u * u * JOB_JITTER);
                    }
                }
            }
            Timing::Batch => unreachable!("bulk jobs are generated a job at a time"),
        }
        self.times.sort_by(f64::total_cmp);
    }

    /// Generates the next bulk job; false once it would start past the end.
    fn next_job(&mut self, w: &World) -> bool {
        let r = &mut self.rng;
        if w.batch_jobs_per_sec <= 0.0 || !w.batch_gap.is_finite() {
            return false;
        }
        // `cursor`: when the last job ended; the next starts an exponential
        // wait later.
        let start = self.cursor - r.unit().max(f64::MIN_POSITIVE).ln() / w.batch_jobs_per_sec;
        if start >= w.horizon {
            return false;
        }
        let n = (w.batch_job_requests * (0.4 + 1.2 * r.unit())).round() as u64;
        for i in 0..n {
            let t = start + (i as f64 + 0.9 * r.unit()) * w.batch_gap;
            if t >= w.horizon {
                break;
            }
            self.times.push(t);
        }
        self.cursor = start + n as f64 * w.batch_gap;
        true
    }

    /// The time of this profile's next request and whether it is the news
    /// question; `None` once it has no more.
    pub(super) fn advance(&mut self, w: &World) -> Option<(f64, bool)> {
        loop {
            let regular = if self.refill(w) {
                Some(self.times[self.pos])
            } else {
                None
            };
            let (t, news) = match regular {
                Some(t) if t <= self.news_at => {
                    self.pos += 1;
                    (t, false)
                }
                _ if self.news_at.is_finite() => {
                    let t = self.news_at;
                    self.news_at = f64::INFINITY;
                    (t, true)
                }
                _ => return None,
            };
            if self.capped {
                // At most `limit` requests in any window of 60 s (boundary
                // included): what would exceed it is dropped.
                let ms = to_ms(t);
                while self.recent.front().is_some_and(|&k| ms - k > 60_000) {
                    self.recent.pop_front();
                }
                if self.recent.len() >= w.limit {
                    continue;
                }
                self.recent.push_back(ms);
            }
            return Some((t, news));
        }
    }

    fn ip(&mut self, w: &World) -> u32 {
        match self.ip {
            Ip::Fixed(a) => a,
            Ip::Pool(i) => *self.rng.pick(&w.pools[usize::from(i)]),
            Ip::Proxy(n) => proxy_ip(self.rng.below(u64::from(n))),
        }
    }

    fn model(&mut self, w: &World, t: f64) -> &'static str {
        let released = t >= w.release;
        let r = &mut self.rng;
        match self.models {
            Models::Fixed(m) => m,
            Models::Benign => {
                if released && r.chance(0.1) {
                    "model-b"
                } else if r.chance(0.3) {
                    "model-mini"
                } else {
                    "model-a"
                }
            }
            Models::Eval => {
                if released && r.chance(0.5) {
                    "model-b"
                } else {
                    "model-a"
                }
            }
            Models::Pivot => {
                if !released {
                    return "model-a";
                }
                let ramp = if w.pivot_ramp > 0.0 {
                    ((t - w.release) / w.pivot_ramp).min(1.0)
                } else {
                    1.0
                };
                if r.chance(w.pivot_share * ramp) {
                    "model-b"
                } else {
                    "model-a"
                }
            }
        }
    }

    /// The record of the request at `t` (`news`: the news question).
    pub(super) fn record(&mut self, w: &World, t: f64, news: bool) -> Record {
        let r = &mut self.rng;
        let genuine = self.mix_in > 0.0 && r.chance(self.mix_in);
        let paraphrase = r.chance(self.paraphrase);
        // Answers are long when the prompt asks for reasoning, whatever its
        // wording: the campaign paraphrases its requests, not its intent.
        let mut median = 250.0;
        let prompt = match (self.prompts, genuine || news) {
            _ if news => text::news_prompt(r),
            (_, true) | (Prompts::Benign, _) => text::benign_prompt(r),
            (Prompts::Coding, _) => text::coding_prompt(r),
            (Prompts::Campus, _) => {
                if r.chance(w.homework) {
                    median = 900.0;
                    text::homework_prompt(r)
                } else {
                    text::benign_prompt(r)
                }
            }
            (Prompts::Eval(bench), _) => {
                median = 900.0;
                let size = text::BENCHMARK_SIZES[usize::from(bench)];
                let i = self.cursor as u32 % size;
                self.cursor = f64::from((i + 1) % size);
                text::benchmark_question(usize::from(bench), i)
            }
            (Prompts::DistillCot, _) => {
                median = 900.0;
                text::distill_cot_prompt(r, paraphrase)
            }
            (Prompts::DistillAgentic, _) => {
                median = 900.0;
                text::distill_agentic_prompt(r, paraphrase)
            }
            (Prompts::Reseller, _) => {
                median = 900.0;
                if r.chance(0.5) {
                    text::distill_cot_prompt(r, paraphrase)
                } else {
                    text::distill_agentic_prompt(r, paraphrase)
                }
            }
            (Prompts::Saas, _) => {
                median = 400.0;
                text::saas_job_prompt(r, self.account)
            }
            (Prompts::Batch(template), _) => {
                median = 20.0;
                text::batch_prompt(r, usize::from(template))
            }
        };
        let model = self.model(w, t);
        let ip = self.ip(w);
        let mut fingerprints = BTreeMap::new();
        fingerprints.insert("device".to_string(), format!("dev_{:016x}", self.device));
        fingerprints.insert("asn".to_string(), self.asn.to_string());
        fingerprints.insert("ja4".to_string(), self.ja4.to_string());
        fingerprints.insert("user_agent".to_string(), self.user_agent.to_string());
        fingerprints.insert(
            "email_domain".to_string(),
            match self.email {
                Email::Domain(d) => d.to_string(),
                Email::Numbered(n) => format!("mail{n}.example"),
            },
        );
        if let Some((bin, number)) = self.card {
            fingerprints.insert("payment".to_string(), format!("card_{bin}_{number:010x}"));
            fingerprints.insert("payment_bin".to_string(), bin.to_string());
        }
        fingerprints.insert("ip".to_string(), ip_string(ip));
        let system = self.system.as_deref();
        let input_tokens = text::input_tokens(&prompt, system);
        Record {
            ts: w.start_ts + to_ms(t) as f64 / 1000.0,
            account: format!("acct_{:012x}", self.account),
            fingerprints,
            system: system.map(str::to_string),
            prompt,
            model: model.to_string(),
            input_tokens,
            output_tokens: text::output_tokens_around(&mut self.rng, median),
            label: if genuine { "benign" } else { self.label }.to_string(),
            cohort: self.cohort.to_string(),
        }
    }
}

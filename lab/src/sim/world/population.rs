//! Who the accounts are: the benign cohorts and the campaign's operations,
//! built in a fixed order from one random stream.

use super::*;

/// Builds the population, in a fixed order, from one random stream; each
/// profile then has its own stream for its requests.
struct Builder<'a> {
    s: &'a Scenario,
    r: Rng,
    out: Vec<Profile>,
}

impl Builder<'_> {
    /// An ordinary person: their own device, home IP and card (60 %); a
    /// common SDK, BIN and email domain; a daily cycle in their time zone;
    /// log-normal volume.
    fn person(&mut self, cohort: &'static str) -> Profile {
        let s = self.s;
        let r = &mut self.r;
        let index = self.out.len() as u64;
        let device = r.next_u64();
        let asn = *r.pick(HOME_ASN);
        let sdk = r.zipf(COMMON_JA4.len(), 1.2);
        let email = email_domain(r);
        let card = if r.chance(0.6) {
            let bin = common_bin(r);
            Some(card(r, bin))
        } else {
            None
        };
        let ip = Ip::Fixed(address_in(r, HOME_NETS));
        let tz = weighted(r, TIMEZONES).unwrap_or(0);
        let daily = r
            .lognormal(s.median_requests_per_day, s.volume_sigma)
            .min(2000.0);
        Profile {
            account: account_id(s.seed, index),
            label: "benign",
            cohort,
            daily,
            timing: Timing::Diurnal(tz),
            prompts: Prompts::Benign,
            models: Models::Benign,
            system: None,
            device,
            asn,
            ja4: COMMON_JA4[sdk],
            user_agent: COMMON_UA[sdk],
            email,
            card,
            ip,
            mix_in: 0.0,
            paraphrase: 0.0,
            capped: false,
            news_at: f64::INFINITY,
            rng: Rng::new(s.seed, index),
            hour: 0,
            times: Vec::new(),
            pos: 0,
            recent: VecDeque::new(),
            cursor: 0.0,
        }
    }

    /// Adds `n` people of `cohort`, each changed by `edit`.
    fn people(
        &mut self,
        n: u32,
        cohort: &'static str,
        mut edit: impl FnMut(&mut Profile, &mut Rng),
    ) {
        for _ in 0..n {
            let mut p = self.person(cohort);
            edit(&mut p, &mut self.r);
            self.out.push(p);
        }
    }

    fn pool(pools: &mut Vec<Vec<u32>>, addresses: Vec<u32>) -> Ip {
        pools.push(addresses);
        Ip::Pool((pools.len() - 1) as u16)
    }
}

pub(super) fn population(s: &Scenario) -> (World, Vec<Profile>) {
    let c = &s.cohorts;
    let horizon = s.hours * 3600.0;
    let mut pools: Vec<Vec<u32>> = Vec::new();
    let mut b = Builder {
        s,
        r: Rng::new(s.seed, u64::MAX),
        out: Vec::new(),
    };

    b.people(s.individuals, "individual", |p, r| {
        if r.chance(0.15) {
            p.prompts = Prompts::Coding;
        }
    });
    let cgnat: Vec<u32> = (0..c.cgnat_ips.max(1))
        .map(|i| ipv4(100, (64 << 16) | ((i / 250) << 8) | (1 + i % 250)))
        .collect();
    b.people(c.mobile_cgnat, "mobile_cgnat", |p, r| {
        p.ip = Ip::Fixed(*r.pick(&cgnat));
        p.asn = "AS21928";
    });
    let campus_ip = if c.campus_ips <= 1 {
        Ip::Fixed(ipv4(128, (32 << 16) | (18 << 8) | 7))
    } else {
        let nat = (0..c.campus_ips)
            .map(|i| ipv4(128, (32 << 16) | ((18 + i / 240) << 8) | (7 + i % 240)))
            .collect();
        Builder::pool(&mut pools, nat)
    };
    let homework = c.campus_homework;
    b.people(c.campus, "campus", |p, _| {
        p.ip = campus_ip;
        p.asn = "AS25";
        p.email = Email::Domain("berkeley.edu");
        if homework > 0.0 {
            p.prompts = Prompts::Campus;
        }
    });
    let company_card = card(&mut b.r, "556677");
    let company_system: Arc<str> = Arc::from(text::COMPANY_SYSTEM);
    b.people(c.company, "company", |p, r| {
        p.ip = Ip::Fixed(ipv4(203, 113 << 8 | 10));
        p.asn = "AS64500";
        p.card = Some(company_card);
        p.email = Email::Domain("acme-corp.com");
        p.system = Some(company_system.clone());
        p.timing = Timing::Office(-5);
        p.prompts = if r.chance(0.6) {
            Prompts::Coding
        } else {
            Prompts::Benign
        };
        p.daily = r.lognormal(15.0, 0.8);
    });
    let agent_system: Arc<str> = Arc::from(text::AGENT_SYSTEM);
    b.people(c.agent_users, "agent_users", |p, r| {
        p.system = Some(agent_system.clone());
        p.prompts = Prompts::Coding;
        p.user_agent = "openpatch/0.9.2";
        p.daily = r.lognormal(12.0, 1.0).min(2000.0);
    });
    for _ in 0..c.households {
        let shared = b.person("household");
        let Ip::Fixed(ip) = shared.ip else {
            unreachable!("a person has a fixed address")
        };
        for _ in 0..3 {
            b.people(1, "household", |p, _| {
                p.device = shared.device;
                p.ip = Ip::Fixed(ip);
            });
        }
    }
    // Evaluation organisations: 1-3 accounts each, on the organisation's own
    // cloud addresses, device and card; a public benchmark run after run.
    for org in 0..c.eval_pipelines {
        let r = &mut b.r;
        let cloud = r.below(CLOUD_NETS.len() as u64) as usize;
        let addresses = (0..r.between(1, 2))
            .map(|_| address_in(r, &CLOUD_NETS[cloud..=cloud]))
            .collect();
        let ip = Builder::pool(&mut pools, addresses);
        let device = r.next_u64();
        let bin = common_bin(r);
        let org_card = card(r, bin);
        let bench = r.below(text::BENCHMARK_SIZES.len() as u64) as u8;
        let domain = r.below(1_000_000) as u32;
        b.people(1 + org % 3, "eval_pipeline", |p, r| {
            p.ip = ip;
            p.asn = CLOUD_ASN[cloud];
            p.device = device;
            p.card = Some(org_card);
            p.email = Email::Numbered(domain);
            p.ja4 = COMMON_JA4[0];
            p.user_agent = COMMON_UA[0];
            p.timing = Timing::Always;
            p.prompts = Prompts::Eval(bench);
            p.models = Models::Eval;
            p.daily = c.eval_requests_per_day * (0.7 + 0.6 * r.unit());
            p.capped = true;
            p.cursor = r.below(u64::from(text::BENCHMARK_SIZES[usize::from(bench)])) as f64;
        });
    }
    let router: Vec<u32> = (0..40)
        .map(|i| ipv4(104, (28 << 16) | ((60 + i / 20) << 8) | (10 + i % 20)))
        .collect();
    let router_ip = Builder::pool(&mut pools, router);
    b.people(c.router_users, "router_users", |p, _| {
        p.ip = router_ip;
        p.asn = "AS13335";
        p.user_agent = "RouterSDK/2.1";
    });
    // A SaaS product: customers bring their own accounts (their own cards
    // and email); the product's workers, sharded by customer, run each
    // customer's jobs at the top of every hour.
    let workers: Vec<(u32, u64)> = (0..c.saas_ips.max(1))
        .map(|i| {
            (
                ipv4(18, (204 << 16) | (77 << 8) | (10 + i % 240)),
                b.r.next_u64(),
            )
        })
        .collect();
    let saas_system: Arc<str> = Arc::from(text::SAAS_SYSTEM);
    b.people(c.saas_customers, "saas", |p, r| {
        let (ip, device) = *r.pick(&workers);
        p.ip = Ip::Fixed(ip);
        p.device = device;
        p.asn = "AS16509";
        p.ja4 = COMMON_JA4[0];
        p.user_agent = "pulseboard-worker/3.2 OpenAI/Python 1.54.3";
        p.system = Some(saas_system.clone());
        p.timing = Timing::TopOfHour(1 + u8::from(r.chance(0.5)));
        p.prompts = Prompts::Saas;
        p.models = Models::Fixed("model-a");
    });
    // The news event: ordinary people, each asking the same question within
    // minutes of the news.
    let news_start = c.news_hour.unwrap_or(s.hours * 5.0 / 8.0) * 3600.0;
    let window = c.news_window_minutes * 60.0;
    b.people(c.news_users, "news_event", |p, r| {
        let u = r.unit();
        let at = news_start + u * u * window;
        if at < horizon {
            p.news_at = at;
        }
    });
    // Batch-API customers: bulk jobs of one template from a cloud address.
    b.people(c.batch_accounts, "batch_api", |p, r| {
        let cloud = r.below(CLOUD_NETS.len() as u64) as usize;
        p.ip = Ip::Fixed(address_in(r, &CLOUD_NETS[cloud..=cloud]));
        p.asn = CLOUD_ASN[cloud];
        p.email = Email::Numbered(r.below(1_000_000) as u32);
        p.ja4 = COMMON_JA4[0];
        p.user_agent = COMMON_UA[0];
        p.timing = Timing::Batch;
        p.prompts = Prompts::Batch(r.below(text::BATCH_TEMPLATES as u64) as u8);
        p.models = Models::Fixed("model-mini");
        p.capped = true;
    });
    campaign(&mut b, &mut pools, router_ip);

    let k = &s.knobs;
    let world = World {
        start_ts: s.start_ts,
        horizon,
        limit: s.account_limit_per_minute.max(1) as usize,
        release: s.release_hour.unwrap_or(s.hours / 2.0) * 3600.0,
        pivot_share: k.pivot_share,
        pivot_ramp: k.pivot_ramp_hours * 3600.0,
        homework: c.campus_homework,
        batch_job_requests: f64::from(c.batch_job_requests),
        batch_gap: if c.batch_requests_per_minute > 0.0 {
            60.0 / c.batch_requests_per_minute
        } else {
            f64::INFINITY
        },
        batch_jobs_per_sec: c.batch_jobs_per_day / 86_400.0,
        pools,
    };
    (world, b.out)
}

fn campaign(b: &mut Builder<'_>, pools: &mut Vec<Vec<u32>>, router: Ip) {
    let s = b.s;
    let k = &s.knobs;
    let shared = k.shared_infrastructure;
    let [coordinated, multi_route, reseller] = s.campaign_accounts();
    let tls = |rare: &'static str| {
        if k.copy_common_tls || !shared {
            COMMON_JA4[0]
        } else {
            rare
        }
    };
    // Without shared infrastructure: a card (common BIN), an email domain and
    // a residential or mobile address of its own, the most common SDK.
    let own = |p: &mut Profile, r: &mut Rng| {
        let bin = common_bin(r);
        p.card = Some(card(r, bin));
        p.email = email_domain(r);
        if r.chance(0.7) {
            p.asn = *r.pick(HOME_ASN);
            p.ip = Ip::Fixed(address_in(r, HOME_NETS));
        } else {
            let m = r.below(MOBILE_ASN.len() as u64) as usize;
            p.asn = MOBILE_ASN[m];
            p.ip = Ip::Fixed(address_in(r, &MOBILE_NETS[m..=m]));
        }
        p.ja4 = COMMON_JA4[0];
        p.user_agent = COMMON_UA[0];
    };
    let base = |p: &mut Profile, label: &'static str, prompts: Prompts| {
        p.label = label;
        p.cohort = "campaign";
        p.daily = k.requests_per_account_per_day;
        p.timing = Timing::Bursts;
        p.prompts = prompts;
        p.models = Models::Fixed("model-a");
        p.paraphrase = k.paraphrase_rate;
        p.capped = true;
    };

    // Coordinated: prepaid cards shared across accounts, datacenter IPs,
    // synchronised bursts, chain-of-thought templates.
    let per_card = k.accounts_per_card.max(1);
    let cards: Vec<(&'static str, u64)> = if shared {
        (0..coordinated.div_ceil(per_card).max(1))
            .map(|_| card(&mut b.r, "532610"))
            .collect()
    } else {
        Vec::new()
    };
    let dc: Vec<u32> = (0..(coordinated / 25).max(60))
        .map(|i| ipv4(45, (83 << 16) | ((10 + i / 200) << 8) | (2 + i % 200)))
        .collect();
    let dc = Builder::pool(pools, dc);
    let mut i = 0;
    b.people(coordinated, "campaign", |p, r| {
        base(p, "campaign:coordinated", Prompts::DistillCot);
        if shared {
            p.card = Some(cards[(i / per_card) as usize % cards.len()]);
            p.asn = "AS16276";
            p.ja4 = tls("t13d301100_5b57614c22b0_3d5424432f57");
            p.user_agent = "python-httpx/0.27.0";
            p.ip = dc;
        } else {
            own(p, r);
        }
        i += 1;
    });
    // Multi-route: a third-party router's IP pool, education accounts, a
    // shared system prompt, office hours in its own time zone, agentic templates.
    const UNIS: &[&str] = &[
        "ntu.edu.example",
        "hku.edu.example",
        "pku.edu.example",
        "kaist.edu.example",
    ];
    let campaign_system: Arc<str> = Arc::from(text::CAMPAIGN_SYSTEM);
    let mut systems: HashSet<String> = HashSet::new();
    b.people(multi_route, "campaign", |p, r| {
        base(p, "campaign:multi_route", Prompts::DistillAgentic);
        p.timing = Timing::Office(8);
        if shared {
            p.email = Email::Domain(r.pick::<&'static str>(UNIS));
            p.asn = "AS13335";
            p.ja4 = tls(COMMON_JA4[3]);
            p.user_agent = "RouterSDK/2.1";
            p.system = Some(campaign_system.clone());
            p.ip = router;
        } else {
            own(p, r);
            // Its own paraphrase of the system prompt, never another's.
            let system = loop {
                let candidate = text::campaign_system_paraphrase(r);
                if systems.insert(candidate.clone()) {
                    break candidate;
                }
            };
            p.system = Some(Arc::from(system));
        }
    });
    // Reseller: residential proxies, a device per account, one client's TLS
    // fingerprint, virtual cards from one BIN, genuine traffic mixed in, a
    // pivot to the new model.
    b.people(reseller, "campaign", |p, r| {
        base(p, "campaign:reseller", Prompts::Reseller);
        p.timing = Timing::Always;
        p.models = Models::Pivot;
        p.mix_in = k.mix_in;
        if shared {
            p.card = Some(card(r, "489537"));
            p.asn = *r.pick(HOME_ASN);
            p.ja4 = tls("t13d1713h2_5b57614c22b0_06a4338a1e2b");
            p.user_agent = "OpenAI/Python 1.54.3";
            p.ip = Ip::Proxy(k.proxy_pool.max(1));
        } else {
            own(p, r);
        }
    });
}

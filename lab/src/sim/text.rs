//! Prompt text for the simulator: varied benign tasks and topics, the
//! campaign's templates, system prompts, and paraphrasing. Generated from
//! word lists shipped here; nothing is downloaded.

use super::rng::Rng;

const TOPICS: &[&str] = &[
    "photosynthesis",
    "the French revolution",
    "compound interest",
    "black holes",
    "sourdough baking",
    "the Rust borrow checker",
    "marathon training",
    "climate models",
    "medieval castles",
    "jazz harmony",
    "supply chains",
    "the immune system",
    "volcanoes",
    "TCP congestion control",
    "Roman aqueducts",
    "linear regression",
    "coral reefs",
    "the printing press",
    "quantum tunnelling",
    "urban gardening",
    "container orchestration",
    "the stock market",
    "migratory birds",
    "plate tectonics",
    "vaccines",
    "impressionist painting",
    "electric cars",
    "the water cycle",
    "chess openings",
    "ancient Egypt",
    "machine translation",
    "sleep hygiene",
    "solar panels",
    "the Silk Road",
    "graph databases",
    "beekeeping",
    "the Cold War",
    "noise-cancelling headphones",
    "protein folding",
    "tax brackets",
    "Kubernetes networking",
    "Shakespeare's sonnets",
    "ocean currents",
    "3D printing",
    "inflation",
    "the Apollo program",
    "meditation",
    "wind turbines",
    "bread yeast",
    "the periodic table",
];

const AUDIENCES: &[&str] = &[
    "a ten-year-old",
    "my manager",
    "a new hire",
    "my grandmother",
    "a university class",
    "a skeptical client",
    "my book club",
    "a hiring committee",
    "our users",
    "a friend",
];

const BENIGN_TASKS: &[&str] = &[
    "Can you explain {topic} to {audience} in a few paragraphs?",
    "Write a short email to {audience} about {topic}, friendly but professional.",
    "Give me five interesting facts about {topic}.",
    "Summarise the main debates around {topic} in bullet points.",
    "I'm preparing a talk on {topic} for {audience}. Suggest an outline.",
    "What are common misconceptions about {topic}?",
    "Help me write a haiku about {topic}.",
    "Compare {topic} and {topic2} in a small table.",
    "My code that deals with {topic} throws an error when the input is empty. How should I handle it?",
    "Translate this sentence into Spanish: I have been reading about {topic} all week.",
    "Draft a product description for an app about {topic}.",
    "Plan a weekend itinerary that involves {topic}.",
    "What should I read first to learn about {topic}?",
    "Rewrite this paragraph to be clearer: {topic} is a thing that a lot of people talk about but not many understand well.",
    "Write a limerick that mentions {topic} and {topic2}.",
    "Give me a study plan for {topic} over four weeks.",
];

const CODING_TASKS: &[&str] = &[
    "Refactor this function so it handles {topic} records without copying: fn load(v: Vec<Record>) -> Vec<Record> {{ v.clone() }}",
    "Write a Python script that parses a CSV of {topic} measurements and plots a histogram.",
    "Why does my SQL query about {topic} return duplicates? SELECT * FROM items JOIN tags ON items.id = tags.item_id",
    "Add unit tests for a parser of {topic} data files; the format is one JSON object per line.",
    "Fix the race condition in this worker pool that processes {topic} jobs.",
    "Implement a binary search over sorted {topic} timestamps in TypeScript.",
    "Explain what this regex does and make it faster: ^(a+)+$ applied to {topic} logs.",
    "Write a Dockerfile for a small web service that serves {topic} data.",
];

/// Phrases that elicit chain-of-thought; the guard's default list mirrors these.
pub const COT_PHRASES: &[&str] = &[
    "Think step by step and show all of your reasoning before the final answer.",
    "Let's think step by step. Explain each step of your reasoning in full detail.",
    "Show your complete chain of thought, then give the final answer on its own line.",
    "Reason carefully through every intermediate step and do not skip any.",
];

const MATH_SUBJECTS: &[&str] = &[
    "a train leaves at {a} km/h and another at {b} km/h",
    "the integral of x^{a} from 0 to {b}",
    "the number of ways to choose {a} items from {b}",
    "the probability of rolling a sum of {a} with {b} dice",
    "the remainder when {a}^{b} is divided by 7",
    "a rectangle with perimeter {a} and area {b}",
    "the sum of the first {a} odd numbers times {b}",
    "a loan of {a} thousand at {b} percent annual interest",
];

/// The internal system prompt of the simulated company.
pub const COMPANY_SYSTEM: &str = "You are Acme Corp's internal assistant. Answer questions about our codebase, \
our deployment process and our style guide. Never share customer data. Prefer concise answers with links to the wiki.";

/// The long system prompt of the simulated open-source coding agent, shared by
/// thousands of its users.
pub const AGENT_SYSTEM: &str = "You are OpenPatch, an autonomous coding agent running in the user's terminal. \
You can read files, run shell commands and propose edits as unified diffs. Always explain your plan first, \
then make the smallest change that works. Never run destructive commands without confirmation. When tests \
fail, read the failure, form a hypothesis, and try again. Keep the user informed of every file you touch. \
Respect the project's formatting and linting rules. If you are unsure, ask.";

/// The system prompt shared across the multi-route operation's accounts.
pub const CAMPAIGN_SYSTEM: &str = "You are an expert senior software engineer and teacher. For every task, \
produce a complete, correct solution and a detailed explanation of the reasoning behind each design choice, \
including alternatives you considered and why you rejected them.";

fn fill(rng: &mut Rng, template: &str) -> String {
    let mut out = template.to_string();
    while let Some(i) = out.find("{topic2}") {
        let w = *rng.pick(TOPICS);
        out.replace_range(i..i + 8, w);
    }
    while let Some(i) = out.find("{topic}") {
        let w = *rng.pick(TOPICS);
        out.replace_range(i..i + 7, w);
    }
    while let Some(i) = out.find("{audience}") {
        let w = *rng.pick(AUDIENCES);
        out.replace_range(i..i + 10, w);
    }
    while let Some(i) = out.find("{a}") {
        out.replace_range(i..i + 3, &rng.between(2, 97).to_string());
    }
    while let Some(i) = out.find("{b}") {
        out.replace_range(i..i + 3, &rng.between(3, 250).to_string());
    }
    out.replace("{{", "{").replace("}}", "}")
}

const CONTEXT: &[&str] = &[
    "I have been reading about {topic} for a while and I keep getting confused by the terminology.",
    "For context, I work as a teacher and {audience} asked me about {topic} yesterday.",
    "Some background: our team is building a small tool related to {topic}, nothing fancy.",
    "I tried searching online but most articles about {topic} assume a lot of prior knowledge.",
    "This is for a newsletter I write every month; last time I covered {topic2}.",
    "I only have about ten minutes, so please keep it reasonably short.",
    "My first attempt was too long and too formal, so I am starting again from scratch.",
    "We had a long discussion about {topic2} at lunch and it reminded me of this.",
];

/// A benign prompt: a varied everyday task, often with a sentence or three
/// of context around it.
pub fn benign_prompt(rng: &mut Rng) -> String {
    let t = *rng.pick(BENIGN_TASKS);
    let task = fill(rng, t);
    let sentences = rng.below(4);
    let mut out = String::new();
    for _ in 0..sentences {
        let c = *rng.pick(CONTEXT);
        out.push_str(&fill(rng, c));
        out.push(' ');
    }
    out.push_str(&task);
    out
}

/// A coding question, as the agent's users and the multi-route operation send.
pub fn coding_prompt(rng: &mut Rng) -> String {
    let t = *rng.pick(CODING_TASKS);
    fill(rng, t)
}

/// An evaluation pipeline's prompt: a benchmark-style question with a
/// chain-of-thought instruction (legitimate, and around the clock).
pub fn eval_prompt(rng: &mut Rng) -> String {
    let q = *rng.pick(MATH_SUBJECTS);
    format!(
        "Question {}: Compute {}. {}",
        rng.between(1, 5000),
        fill(rng, q),
        rng.pick(COT_PHRASES)
    )
}

/// The coordinated operation's template: fixed scaffolding, varied content,
/// full reasoning requested.
pub fn distill_cot_prompt(rng: &mut Rng, paraphrase: bool) -> String {
    let s = *rng.pick(MATH_SUBJECTS);
    let subject = fill(rng, s);
    if paraphrase {
        return paraphrased(rng, &subject);
    }
    format!(
        "You will be given a problem. Solve it completely. Think step by step and show all of your reasoning \
before the final answer, numbering every step, then state the final answer on its own line.\n\nProblem: Consider {subject}. \
What is the answer? Also explain the general method so that a student could apply it to similar problems."
    )
}

/// The multi-route operation's agentic/coding template.
pub fn distill_agentic_prompt(rng: &mut Rng, paraphrase: bool) -> String {
    let task = coding_prompt(rng);
    if paraphrase {
        return paraphrased(rng, &task);
    }
    format!(
        "Task: {task}\n\nRespond in this exact format: first a section PLAN listing every step you will take, \
then a section REASONING explaining each decision in detail, then the full CODE, then TESTS that prove it works. \
Do not omit any section."
    )
}

/// Rewords the scaffolding around `core` so that each prompt's template
/// differs: the adaptive attacker's counter to template detection.
fn paraphrased(rng: &mut Rng, core: &str) -> String {
    const OPEN: &[&str] = &[
        "Here is something I need help with.",
        "Quick question for you.",
        "I'm stuck on this one.",
        "Please take a look at the following.",
        "Could you work through this?",
        "Hi! A problem for you:",
        "I would appreciate your help.",
        "Consider the following carefully.",
    ];
    const ASK: &[&str] = &[
        "Walk me through how you get there.",
        "Explain how you arrive at it.",
        "Make sure the method is clear.",
        "I want to understand the approach, not just the result.",
        "Go through it carefully.",
        "Please be thorough.",
        "Include the intermediate results.",
        "Justify each part.",
    ];
    const CLOSE: &[&str] = &[
        "Thanks!",
        "Much appreciated.",
        "",
        "Cheers.",
        "Thank you in advance.",
        "That's all.",
    ];
    format!(
        "{} {} {} {}",
        rng.pick(OPEN),
        core,
        rng.pick(ASK),
        rng.pick(CLOSE)
    )
    .trim()
    .to_string()
}

/// A student's homework question asking for a step-by-step answer, as real
/// students write them (the campus cohort sends some).
pub fn homework_prompt(rng: &mut Rng) -> String {
    const ASK: &[&str] = &[
        "This is for my homework, can you solve it step by step so I can follow?",
        "Please explain step by step, my exam is tomorrow.",
        "Show all the steps, I need to understand the method for the quiz.",
        "I got a different answer than the book. Walk me through it step by step?",
        "Explain your reasoning for each step please, the teacher wants the working.",
    ];
    let q = *rng.pick(MATH_SUBJECTS);
    format!(
        "Problem {}.{}: {}. {}",
        rng.between(1, 12),
        rng.between(1, 40),
        capitalise(&fill(rng, q)),
        rng.pick(ASK)
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The public benchmarks the evaluation pipelines run, by size: question
/// `i` of benchmark `b` is always the same text, so a question repeats
/// every run, and across the organisations running that benchmark.
pub const BENCHMARK_SIZES: &[u32] = &[1319, 5000, 2000];

/// Question `i` of benchmark `bench` (see [`BENCHMARK_SIZES`]), with its
/// chain-of-thought instruction.
pub fn benchmark_question(bench: usize, i: u32) -> String {
    let mut rng = Rng::new(0xbe7c_4a11_0000 + bench as u64, u64::from(i));
    let q = *rng.pick(MATH_SUBJECTS);
    let subject = fill(&mut rng, q);
    format!(
        "[{}] Question {}: Compute {}. {}",
        ["arith-cot", "math-hard", "word-problems"][bench % 3],
        i + 1,
        subject,
        rng.pick(COT_PHRASES)
    )
}

/// The question everybody asks within minutes of the news event; a few ask
/// it in their own words.
pub fn news_prompt(rng: &mut Rng) -> String {
    const SAME: &str = "Is it true that the central bank cut interest rates by a full point this morning? What does it mean for my mortgage?";
    const OTHERS: &[&str] = &[
        "Did the central bank really cut rates by a full point this morning? What happens to my mortgage now?",
        "is it true the central bank cut interest rates by 1 point today?? what does it mean for my mortgage",
        "The central bank cut interest rates by a full point this morning, is that true? What does it mean for mortgages?",
        "Is it true that the central bank cut interest rates by a full point this morning? What does it mean for my savings?",
    ];
    if rng.chance(0.7) {
        SAME.to_string()
    } else {
        (*rng.pick(OTHERS)).to_string()
    }
}

/// The system prompt of the simulated SaaS product's scheduled jobs.
pub const SAAS_SYSTEM: &str = "You are Pulseboard's reporting engine. You receive a customer's metrics for \
the last hour and write the hourly digest their team reads in Slack: three bullet points, one risk, one \
recommendation. Use the customer's own product names. Never invent numbers.";

/// One scheduled job of the SaaS product: its one template filled with
/// customer `customer`'s data for the hour.
pub fn saas_job_prompt(rng: &mut Rng, customer: u64) -> String {
    const PRODUCTS: &[&str] = &[
        "checkout",
        "mobile app",
        "search",
        "onboarding",
        "billing",
        "API",
        "dashboard",
        "emails",
    ];
    format!(
        "Customer: tenant-{:06}. Hour digest.\nSignups: {}. Active users: {}. Errors: {} ({} % of requests). \
p95 latency: {} ms. Tickets opened: {}, closed: {}. Top page: {}. Top complaint: {}.\nWrite the digest.",
        customer % 1_000_000,
        rng.below(400),
        rng.between(100, 90_000),
        rng.below(5000),
        rng.below(40) as f64 / 10.0,
        rng.between(80, 2400),
        rng.below(60),
        rng.below(60),
        rng.pick(PRODUCTS),
        rng.pick(TOPICS)
    )
}

/// The batch-API customers' job templates: uniform extraction and
/// classification prompts with short answers.
pub const BATCH_TEMPLATES: usize = 4;

/// One prompt of a bulk job of template `template` (below
/// [`BATCH_TEMPLATES`]): the same instruction, different content.
pub fn batch_prompt(rng: &mut Rng, template: usize) -> String {
    match template % BATCH_TEMPLATES {
        0 => format!(
            "Classify the sentiment of this product review as positive, negative or neutral. Answer with one word.\n\nReview: {}",
            fill(rng, "I bought this for {audience} after reading about {topic}; it arrived late but works as described.")
        ),
        1 => format!(
            "Extract the vendor, invoice number, date and total from the invoice below. Reply with JSON only.\n\nINVOICE {}-{} | {} Supplies Ltd | 2026-{:02}-{:02} | {} items | TOTAL {}.{:02} EUR",
            rng.between(1000, 9999),
            rng.below(100_000),
            capitalise(rng.pick::<&str>(TOPICS)),
            rng.between(1, 12),
            rng.between(1, 28),
            rng.between(1, 40),
            rng.between(10, 9999),
            rng.below(100)
        ),
        2 => format!(
            "Assign this support ticket to one of: billing, bug, feature_request, account, other. Answer with the label only.\n\nTicket #{}: {}",
            rng.below(10_000_000),
            fill(rng, "Hello, since yesterday the page about {topic} does not load for {audience}. Please help.")
        ),
        _ => format!(
            "Does the following text mention a person's name, an email address or a phone number? Answer yes or no.\n\nText: {}",
            fill(rng, "Notes from the meeting about {topic} and {topic2}; follow up with {audience} next week.")
        ),
    }
}

/// A paraphrase of the multi-route operation's system prompt, made for one
/// account (the adaptive attacker shares no system prompt).
pub fn campaign_system_paraphrase(rng: &mut Rng) -> String {
    const ROLE: &[&str] = &[
        "You are an expert senior software engineer and teacher.",
        "Act as a principal engineer who mentors juniors.",
        "You are a meticulous staff engineer.",
        "Take the role of an experienced programming instructor.",
        "You are a senior developer with twenty years of experience.",
        "Behave like a patient, rigorous tech lead.",
    ];
    const TASK: &[&str] = &[
        "For every task, produce a complete, correct solution",
        "Always give a full working answer",
        "Solve each request end to end",
        "Deliver a finished, tested solution to each problem",
        "Answer every task completely",
    ];
    const WHY: &[&str] = &[
        "and explain the reasoning behind each design choice.",
        "with a detailed justification of every decision.",
        "and walk through why each step is needed.",
        "and describe the alternatives you rejected and why.",
        "including your reasoning at every step.",
    ];
    const STYLE: &[&str] = &[
        "Use clear headings.",
        "Prefer idiomatic code.",
        "Be thorough rather than brief.",
        "Write for a reader who will maintain the code.",
        "Keep the tone friendly.",
        "",
    ];
    const NAMES: &[&str] = &[
        "Atlas", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Indigo",
        "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Onyx", "Pioneer",
    ];
    format!(
        "{} {} {} {} Project: {}-{}.",
        rng.pick(ROLE),
        rng.pick(TASK),
        rng.pick(WHY),
        rng.pick(STYLE),
        rng.pick(NAMES),
        rng.between(100, 9999)
    )
    .replace("  ", " ")
}

/// Output tokens for a prompt: chain-of-thought answers run long.
pub fn output_tokens(rng: &mut Rng, cot: bool) -> u32 {
    output_tokens_around(rng, if cot { 900.0 } else { 250.0 })
}

/// Output tokens around a median (log-normal, σ 0.6, from 5 to 8,000).
pub fn output_tokens_around(rng: &mut Rng, median: f64) -> u32 {
    rng.lognormal(median, 0.6).clamp(5.0, 8000.0) as u32
}

/// Input tokens, about four bytes per token.
pub fn input_tokens(prompt: &str, system: Option<&str>) -> u32 {
    ((prompt.len() + system.map_or(0, str::len)) / 4 + 1) as u32
}

/// Whether a prompt contains one of the chain-of-thought phrases.
pub fn is_cot(prompt: &str) -> bool {
    let p = prompt.to_lowercase();
    p.contains("step by step") || p.contains("chain of thought") || p.contains("reasoning")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_vary_and_fill_every_placeholder() {
        let mut rng = Rng::new(1, 1);
        let prompts: Vec<String> = (0..200).map(|_| benign_prompt(&mut rng)).collect();
        let distinct: std::collections::HashSet<&String> = prompts.iter().collect();
        assert!(distinct.len() > 150);
        for p in prompts.iter().chain(
            [
                distill_cot_prompt(&mut rng, false),
                distill_agentic_prompt(&mut rng, true),
            ]
            .iter(),
        ) {
            assert!(!p.contains('{') || p.contains("fn load"), "unfilled: {p}");
        }
        assert!(is_cot(&distill_cot_prompt(&mut rng, false)));
        assert!(is_cot(&eval_prompt(&mut rng)));
    }
}

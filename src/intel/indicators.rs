//! What imports and matches look like from outside the guard: the
//! indicators to import, what an import did, what matched, and how full
//! the tables are.

/// One indicator to import: what the STIX layer parsed, on the guard's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportIndicator {
    /// Its id (a STIX `indicator--…`).
    pub id: String,
    /// Its producer (the STIX identity of its creator).
    pub producer: String,
    /// The producer's name, if the bundle gave it.
    pub producer_name: Option<String>,
    /// The guard kind name of its value.
    pub kind: String,
    /// The value's token under the consortium key.
    pub token: [u8; 32],
    /// 0-100.
    pub confidence: u8,
    /// When this version was made (seconds on the guard's clock): of two
    /// versions of one id, the later counts.
    pub modified: f64,
    /// When it expires (seconds on the guard's clock; `None`: with the guard's horizon).
    pub valid_until: Option<f64>,
    /// Whether this version revokes it.
    pub revoked: bool,
    /// The campaign it indicates, if named: its matches share one budget.
    pub campaign: Option<String>,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Indicators now held that were not before.
    pub added: usize,
    /// Indicators replaced by a later version.
    pub updated: usize,
    /// Indicators revoked by their producer.
    pub revoked: usize,
    /// Versions ignored: not newer than the one held, expired, of an
    /// untrusted producer or too light, a revocation by someone other than
    /// the creator, or of a kind this guard does not record or ignores
    /// (`intel.ignore_kinds`).
    pub ignored: usize,
}

/// An imported indicator an account matched.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorMatch {
    /// The indicator's id.
    pub id: String,
    /// Its producer's identity, and name if known.
    pub producer: String,
    /// See `producer`.
    pub producer_name: Option<String>,
    /// The kind of the value matched.
    pub kind: String,
    /// Its weight: confidence times trust.
    pub weight: f64,
    /// When it expires (guard clock seconds).
    pub valid_until: f64,
}

/// How often an imported indicator matched: what a sighting reports.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedIndicator {
    /// The indicator's id.
    pub id: String,
    /// Requests of accounts marked by it.
    pub count: u64,
    /// First and last such request (guard clock seconds).
    pub first_seen: f64,
    /// See `first_seen`.
    pub last_seen: f64,
}

/// How full the intelligence tables are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntelStats {
    /// Shared values remembered for export.
    pub values: usize,
    /// Imported indicators held (revoked and expired ones included until replaced).
    pub imports: usize,
    /// Accounts marked by an imported indicator.
    pub marked: usize,
    /// Values hashed under the key to check them against the imports.
    pub checked: u64,
    /// Shared values not remembered because the table was full.
    pub dropped: u64,
    /// Of the imported indicators held, those revoked.
    pub revoked: usize,
    /// Requests of accounts marked by the imported indicators held (what
    /// their sightings count).
    pub matches: u64,
}

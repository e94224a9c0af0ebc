//! The command table: every command raftis knows, with the metadata `COMMAND` reports and that
//! cluster clients use to find keys (arity, flags, first/last key and step).

/// How a command is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exec {
    /// Parsed into a keyspace operation (`crate::sm::Op`).
    Keyspace,
    /// Handled by the connection/server layer.
    Server,
}

/// One command's metadata.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name; for subcommands `container|sub`.
    pub name: &'static str,
    /// Redis arity: exact argument count including the name, or `-n` for at least `n`.
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub exec: Exec,
    /// Subcommands, for container commands (CLIENT, COMMAND, CONFIG).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// Whether `argc` (name included) satisfies the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        if self.arity >= 0 {
            argc == self.arity as usize
        } else {
            argc >= (-self.arity) as usize
        }
    }

    /// Whether the command is flagged `write`.
    pub fn is_write(&self) -> bool {
        self.flags.contains(&"write")
    }
}

const R: &[&str] = &["readonly", "fast"];
const RS: &[&str] = &["readonly"];
const W: &[&str] = &["write", "denyoom"];
const WF: &[&str] = &["write", "denyoom", "fast"];
const WD: &[&str] = &["write", "fast"];
const WS: &[&str] = &["write"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

const AR: &[&str] = &["@read", "@string", "@fast"];
const ARS: &[&str] = &["@read", "@string", "@slow"];
const AW: &[&str] = &["@write", "@string", "@slow"];
const AWF: &[&str] = &["@write", "@string", "@fast"];
const KR: &[&str] = &["@keyspace", "@read", "@fast"];
const KRS: &[&str] = &["@keyspace", "@read", "@slow", "@dangerous"];
const KW: &[&str] = &["@keyspace", "@write", "@fast"];
const KWS: &[&str] = &["@keyspace", "@write", "@slow"];
const KWD: &[&str] = &["@keyspace", "@write", "@slow", "@dangerous"];
const AC: &[&str] = &["@fast", "@connection"];
const ASC: &[&str] = &["@slow", "@connection"];
const ATX: &[&str] = &["@fast", "@transaction"];
const ADM: &[&str] = &["@admin", "@slow", "@dangerous"];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $exec:ident, $summary:literal) => {
        spec!($name, $arity, $flags, $first, $last, $step, $acl, $group, $since, $exec, $summary, &[])
    };
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $acl:expr,
     $group:literal, $since:literal, $exec:ident, $summary:literal, $subs:expr) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            step: $step,
            acl: $acl,
            group: $group,
            summary: $summary,
            since: $since,
            exec: Exec::$exec,
            subcommands: $subs,
        }
    };
}

const CLIENT_SUBS: &[CommandSpec] = &[
    spec!(
        "client|id",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "5.0.0",
        Server,
        "Returns the client ID for the current connection"
    ),
    spec!("client|setname", 3, CONN, 0, 0, 0, ASC, "connection", "2.6.9", Server, "Sets the current connection name"),
    spec!(
        "client|getname",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "2.6.9",
        Server,
        "Returns the name of the current connection"
    ),
    spec!(
        "client|setinfo",
        4,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "7.2.0",
        Server,
        "Sets information specific to the client or connection"
    ),
    spec!(
        "client|info",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "6.2.0",
        Server,
        "Returns information about the connection"
    ),
    spec!("client|list", -2, ADMIN, 0, 0, 0, ADM, "connection", "2.4.0", Server, "Lists open connections"),
    spec!(
        "client|help",
        2,
        CONN,
        0,
        0,
        0,
        ASC,
        "connection",
        "5.0.0",
        Server,
        "Returns helpful text about the different subcommands"
    ),
];

const COMMAND_SUBS: &[CommandSpec] = &[
    spec!(
        "command|count",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Server,
        "Returns a count of commands"
    ),
    spec!(
        "command|info",
        -2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Server,
        "Returns information about one, multiple or all commands"
    ),
    spec!(
        "command|docs",
        -2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "7.0.0",
        Server,
        "Returns documentary information about one, multiple or all commands"
    ),
    spec!(
        "command|list",
        -2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "7.0.0",
        Server,
        "Returns a list of command names"
    ),
    spec!(
        "command|getkeys",
        -4,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Server,
        "Extracts the key names from an arbitrary command"
    ),
    spec!(
        "command|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "5.0.0",
        Server,
        "Returns helpful text about the different subcommands"
    ),
];

const CLUSTER_SUBS: &[CommandSpec] = &[
    spec!(
        "cluster|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "5.0.0",
        Server,
        "Returns helpful text about the different subcommands"
    ),
    spec!(
        "cluster|info",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Server,
        "Returns information about the state of a node"
    ),
    spec!(
        "cluster|keyslot",
        3,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Server,
        "Returns the hash slot for a key"
    ),
    spec!(
        "cluster|myid",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Server,
        "Returns the ID of a node"
    ),
    spec!(
        "cluster|nodes",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Server,
        "Returns the cluster configuration for a node"
    ),
    spec!(
        "cluster|shards",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "7.0.0",
        Server,
        "Returns the mapping of cluster slots to shards"
    ),
    spec!(
        "cluster|slots",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Server,
        "Returns the mapping of cluster slots to nodes"
    ),
];

const CONFIG_SUBS: &[CommandSpec] = &[
    spec!(
        "config|get",
        -3,
        ADMIN,
        0,
        0,
        0,
        ADM,
        "server",
        "2.0.0",
        Server,
        "Returns the effective values of configuration parameters"
    ),
    spec!("config|resetstat", 2, ADMIN, 0, 0, 0, ADM, "server", "2.0.0", Server, "Resets the server's statistics"),
    spec!(
        "config|help",
        2,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "5.0.0",
        Server,
        "Returns helpful text about the different subcommands"
    ),
];

/// Every command, sorted by name.
pub const COMMANDS: &[CommandSpec] = &[
    spec!(
        "append",
        3,
        W,
        1,
        1,
        1,
        AWF,
        "string",
        "2.0.0",
        Keyspace,
        "Appends a string to the value of a key. Creates the key if it doesn't exist"
    ),
    spec!(
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        AC,
        "connection",
        "1.0.0",
        Server,
        "Authenticates the connection"
    ),
    spec!(
        "client",
        -2,
        &[],
        0,
        0,
        0,
        &["@slow"],
        "connection",
        "2.4.0",
        Server,
        "A container for client connection commands",
        CLIENT_SUBS
    ),
    spec!(
        "cluster",
        -2,
        &[],
        0,
        0,
        0,
        &["@slow"],
        "cluster",
        "3.0.0",
        Server,
        "A container for Redis Cluster commands",
        CLUSTER_SUBS
    ),
    spec!(
        "command",
        -1,
        &["loading", "stale"],
        0,
        0,
        0,
        ASC,
        "server",
        "2.8.13",
        Server,
        "Returns detailed information about all commands",
        COMMAND_SUBS
    ),
    spec!(
        "config",
        -2,
        &[],
        0,
        0,
        0,
        &["@slow"],
        "server",
        "2.0.0",
        Server,
        "A container for server configuration commands",
        CONFIG_SUBS
    ),
    spec!("copy", -3, W, 1, 2, 1, KWS, "generic", "6.2.0", Keyspace, "Copies the value of a key to a new key"),
    spec!("dbsize", 1, R, 0, 0, 0, KR, "server", "1.0.0", Keyspace, "Returns the number of keys in the database"),
    spec!(
        "debug",
        -2,
        &["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
        ADM,
        "server",
        "1.0.0",
        Server,
        "A container for debugging commands"
    ),
    spec!(
        "decr",
        2,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "1.0.0",
        Keyspace,
        "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist"
    ),
    spec!(
        "decrby",
        3,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "1.0.0",
        Keyspace,
        "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist"
    ),
    spec!("del", -2, WS, 1, -1, 1, KWS, "generic", "1.0.0", Keyspace, "Deletes one or more keys"),
    spec!(
        "discard",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        ATX,
        "transactions",
        "2.0.0",
        Server,
        "Discards a transaction"
    ),
    spec!("echo", 2, &["fast"], 0, 0, 0, AC, "connection", "1.0.0", Server, "Returns the given string"),
    spec!(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        0,
        0,
        0,
        &["@slow", "@transaction"],
        "transactions",
        "1.2.0",
        Server,
        "Executes all commands in a transaction"
    ),
    spec!("exists", -2, R, 1, -1, 1, KR, "generic", "1.0.0", Keyspace, "Determines whether one or more keys exist"),
    spec!("expire", -3, WD, 1, 1, 1, KW, "generic", "1.0.0", Keyspace, "Sets the expiration time of a key in seconds"),
    spec!(
        "expireat",
        -3,
        WD,
        1,
        1,
        1,
        KW,
        "generic",
        "1.2.0",
        Keyspace,
        "Sets the expiration time of a key to a Unix timestamp"
    ),
    spec!(
        "expiretime",
        2,
        R,
        1,
        1,
        1,
        KR,
        "generic",
        "7.0.0",
        Keyspace,
        "Returns the expiration time of a key as a Unix timestamp"
    ),
    spec!("flushall", -1, WS, 0, 0, 0, KWD, "server", "1.0.0", Keyspace, "Removes all keys from all databases"),
    spec!("flushdb", -1, WS, 0, 0, 0, KWD, "server", "1.0.0", Keyspace, "Remove all keys from the current database"),
    spec!("get", 2, R, 1, 1, 1, AR, "string", "1.0.0", Keyspace, "Returns the string value of a key"),
    spec!(
        "getdel",
        2,
        WD,
        1,
        1,
        1,
        AWF,
        "string",
        "6.2.0",
        Keyspace,
        "Returns the string value of a key after deleting the key"
    ),
    spec!(
        "getex",
        -2,
        WD,
        1,
        1,
        1,
        AWF,
        "string",
        "6.2.0",
        Keyspace,
        "Returns the string value of a key after setting its expiration time"
    ),
    spec!(
        "getrange",
        4,
        RS,
        1,
        1,
        1,
        ARS,
        "string",
        "2.4.0",
        Keyspace,
        "Returns a substring of the string stored at a key"
    ),
    spec!(
        "getset",
        3,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "1.0.0",
        Keyspace,
        "Returns the previous string value of a key after setting it to a new value"
    ),
    spec!(
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        0,
        0,
        0,
        AC,
        "connection",
        "6.0.0",
        Server,
        "Handshakes with the Redis server"
    ),
    spec!(
        "incr",
        2,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "1.0.0",
        Keyspace,
        "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist"
    ),
    spec!(
        "incrby",
        3,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "1.0.0",
        Keyspace,
        "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist"
    ),
    spec!(
        "incrbyfloat",
        3,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "2.6.0",
        Keyspace,
        "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist"
    ),
    spec!(
        "info",
        -1,
        &["loading", "stale"],
        0,
        0,
        0,
        &["@slow", "@dangerous"],
        "server",
        "1.0.0",
        Server,
        "Returns information and statistics about the server"
    ),
    spec!("keys", 2, RS, 0, 0, 0, KRS, "generic", "1.0.0", Keyspace, "Returns all key names that match a pattern"),
    spec!("lcs", -3, RS, 1, 2, 1, ARS, "string", "7.0.0", Keyspace, "Finds the longest common substring"),
    spec!(
        "mget",
        -2,
        R,
        1,
        -1,
        1,
        AR,
        "string",
        "1.0.0",
        Keyspace,
        "Atomically returns the string values of one or more keys"
    ),
    spec!(
        "mset",
        -3,
        W,
        1,
        -1,
        2,
        AW,
        "string",
        "1.0.1",
        Keyspace,
        "Atomically creates or modifies the string values of one or more keys"
    ),
    spec!(
        "msetnx",
        -3,
        W,
        1,
        -1,
        2,
        AW,
        "string",
        "1.0.1",
        Keyspace,
        "Atomically modifies the string values of one or more keys only when all keys don't exist"
    ),
    spec!(
        "multi",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        ATX,
        "transactions",
        "1.2.0",
        Server,
        "Starts a transaction"
    ),
    spec!("persist", 2, WD, 1, 1, 1, KW, "generic", "2.2.0", Keyspace, "Removes the expiration time of a key"),
    spec!(
        "pexpire",
        -3,
        WD,
        1,
        1,
        1,
        KW,
        "generic",
        "2.6.0",
        Keyspace,
        "Sets the expiration time of a key in milliseconds"
    ),
    spec!(
        "pexpireat",
        -3,
        WD,
        1,
        1,
        1,
        KW,
        "generic",
        "2.6.0",
        Keyspace,
        "Sets the expiration time of a key to a Unix milliseconds timestamp"
    ),
    spec!(
        "pexpiretime",
        2,
        R,
        1,
        1,
        1,
        KR,
        "generic",
        "7.0.0",
        Keyspace,
        "Returns the expiration time of a key as a Unix milliseconds timestamp"
    ),
    spec!(
        "ping",
        -1,
        &["fast"],
        0,
        0,
        0,
        AC,
        "connection",
        "1.0.0",
        Server,
        "Returns the server's liveliness response"
    ),
    spec!(
        "psetex",
        4,
        W,
        1,
        1,
        1,
        AW,
        "string",
        "2.6.0",
        Keyspace,
        "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist"
    ),
    spec!(
        "pttl",
        2,
        R,
        1,
        1,
        1,
        KR,
        "generic",
        "2.6.0",
        Keyspace,
        "Returns the expiration time in milliseconds of a key"
    ),
    spec!(
        "quit",
        -1,
        &["allow_busy", "noscript", "loading", "stale", "fast", "no_auth"],
        0,
        0,
        0,
        AC,
        "connection",
        "1.0.0",
        Server,
        "Closes the connection"
    ),
    spec!(
        "randomkey",
        1,
        RS,
        0,
        0,
        0,
        &["@keyspace", "@read", "@slow"],
        "generic",
        "1.0.0",
        Keyspace,
        "Returns a random key name from the database"
    ),
    spec!(
        "readonly",
        1,
        &["loading", "stale", "fast"],
        0,
        0,
        0,
        AC,
        "cluster",
        "3.0.0",
        Server,
        "Enables read-only queries for a connection to a Redis Cluster replica node"
    ),
    spec!(
        "readwrite",
        1,
        &["loading", "stale", "fast"],
        0,
        0,
        0,
        AC,
        "cluster",
        "3.0.0",
        Server,
        "Enables read-write queries for a connection to a Reids Cluster replica node"
    ),
    spec!("rename", 3, WS, 1, 2, 1, KWS, "generic", "1.0.0", Keyspace, "Renames a key and overwrites the destination"),
    spec!(
        "renamenx",
        3,
        WD,
        1,
        2,
        1,
        KW,
        "generic",
        "1.0.0",
        Keyspace,
        "Renames a key only when the target key name doesn't exist"
    ),
    spec!(
        "reset",
        1,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        0,
        0,
        0,
        AC,
        "connection",
        "6.2.0",
        Server,
        "Resets the connection"
    ),
    spec!(
        "role",
        1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
        &["@admin", "@fast", "@dangerous"],
        "server",
        "2.8.12",
        Server,
        "Returns the replication role"
    ),
    spec!(
        "scan",
        -2,
        RS,
        0,
        0,
        0,
        &["@keyspace", "@read", "@slow"],
        "generic",
        "2.8.0",
        Keyspace,
        "Iterates over the key names in the database"
    ),
    spec!(
        "select",
        2,
        &["loading", "stale", "fast"],
        0,
        0,
        0,
        AC,
        "connection",
        "1.0.0",
        Server,
        "Changes the selected database"
    ),
    spec!(
        "set",
        -3,
        W,
        1,
        1,
        1,
        AW,
        "string",
        "1.0.0",
        Keyspace,
        "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist"
    ),
    spec!(
        "setex",
        4,
        W,
        1,
        1,
        1,
        AW,
        "string",
        "2.0.0",
        Keyspace,
        "Sets the string value and expiration time of a key. Creates the key if it doesn't exist"
    ),
    spec!(
        "setnx",
        3,
        WF,
        1,
        1,
        1,
        AWF,
        "string",
        "1.0.0",
        Keyspace,
        "Set the string value of a key only when the key doesn't exist"
    ),
    spec!(
        "setrange",
        4,
        W,
        1,
        1,
        1,
        AW,
        "string",
        "2.2.0",
        Keyspace,
        "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist"
    ),
    spec!("strlen", 2, R, 1, 1, 1, AR, "string", "2.2.0", Keyspace, "Returns the length of a string value"),
    spec!("substr", 4, RS, 1, 1, 1, ARS, "string", "1.0.0", Keyspace, "Returns a substring from a string value"),
    spec!(
        "time",
        1,
        &["loading", "stale", "fast"],
        0,
        0,
        0,
        &["@fast"],
        "server",
        "2.6.0",
        Server,
        "Returns the server time"
    ),
    spec!(
        "touch",
        -2,
        R,
        1,
        -1,
        1,
        KR,
        "generic",
        "3.2.1",
        Keyspace,
        "Returns the number of existing keys out of those specified after updating the time they were last accessed"
    ),
    spec!("ttl", 2, R, 1, 1, 1, KR, "generic", "1.0.0", Keyspace, "Returns the expiration time in seconds of a key"),
    spec!("type", 2, R, 1, 1, 1, KR, "generic", "1.0.0", Keyspace, "Determines the type of value stored at a key"),
    spec!("unlink", -2, WD, 1, -1, 1, KW, "generic", "4.0.0", Keyspace, "Asynchronously deletes one or more keys"),
    spec!(
        "unwatch",
        1,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        0,
        0,
        0,
        ATX,
        "transactions",
        "2.2.0",
        Server,
        "Forgets about watched keys of a transaction"
    ),
    spec!(
        "upd",
        3,
        W,
        1,
        1,
        1,
        AW,
        "string",
        "raftis",
        Keyspace,
        "raftis extension: updates the value of an existing key only (OK, or nil when the key does not exist)"
    ),
    spec!(
        "watch",
        -2,
        &["noscript", "loading", "stale", "fast", "allow_busy"],
        1,
        -1,
        1,
        ATX,
        "transactions",
        "2.2.0",
        Server,
        "Monitors changes to keys to determine the execution of a transaction"
    ),
];

/// Finds a command by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find(COMMANDS, name, "")
}

/// Finds a container's subcommand by name, case-insensitively.
pub fn lookup_sub(container: &'static CommandSpec, sub: &[u8]) -> Option<&'static CommandSpec> {
    find(container.subcommands, sub, container.name)
}

fn find(list: &'static [CommandSpec], name: &[u8], prefix: &str) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    if prefix.is_empty() {
        // COMMANDS is sorted by name (a test checks it).
        return list.binary_search_by(|c| c.name.as_bytes().cmp(lower)).ok().map(|i| &list[i]);
    }
    list.iter().find(|c| c.name.as_bytes()[prefix.len() + 1..] == lower[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_consistent() {
        for pair in COMMANDS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} before {}", pair[0].name, pair[1].name);
        }
        for c in COMMANDS {
            for s in c.subcommands {
                assert!(s.name.starts_with(&format!("{}|", c.name)));
            }
        }
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert_eq!(lookup_sub(lookup(b"client").unwrap(), b"SETNAME").map(|c| c.name), Some("client|setname"));
    }
}

-- raftis's Lua environment: run once when a script VM starts (chunk name "=raftis").
--
-- It gives scripts Redis 7.0's sandbox: the globals and every table reachable from them are
-- read-only (Redis patches its Lua for this; raftis puts read-only views in front of them),
-- reading a missing global is an error, and nothing a script does survives it. A VM is reused
-- by every script that runs on its thread, so this is also what keeps replicas identical: what
-- a script sees depends only on the log, never on what ran in the VM before it.
--
-- `rt` holds the Rust side: `dispatch` (redis.call's work, set for each run), `rand` (the
-- run's lrand48), `aborted` (the reason a run was stopped, or nil), `log`, `sha1hex`,
-- `setresp`, `reset` (called by Rust before each run).
local rt = ...

local type, error, tostring_, select, unpack_ = type, error, tostring, select, unpack
local rawget, rawset, next, setmetatable, getmetatable = rawget, rawset, next, setmetatable, getmetatable
local pcall_, xpcall_, ipairs_, pairs_ = pcall, xpcall, ipairs, pairs
local format, byte, floor = string.format, string.byte, math.floor
local getinfo = debug.getinfo
local resume_ = coroutine.resume
local tinsert, tremove, tsort, tconcat = table.insert, table.remove, table.sort, table.concat
local G = _G

-- Read-only views -------------------------------------------------------------------------

-- view -> the table it shows; table -> its view.
local backing, views = {}, {}

local function readonly()
  error("Attempt to modify a readonly table", 2)
end

-- What getmetatable answers for a read-only view: an empty table that is read-only too.
local frozen_meta = setmetatable({}, { __newindex = readonly, __metatable = false })

-- The read-only view of `t`; tables inside `t` are replaced by their views first.
local function protect(t)
  if backing[t] then return t end
  local v = views[t]
  if v then return v end
  v = {}
  views[t], backing[v] = v, t
  for k, x in next, t do
    if type(x) == "table" and x ~= G then rawset(t, k, protect(x)) end
  end
  setmetatable(v, { __index = t, __newindex = readonly, __metatable = frozen_meta })
  return v
end

-- A read of a global (or load-time `redis` field) that does not exist; raised for the script's
-- line (level 3: the caller of the __index function that calls this).
local function missing(name)
  error("Script attempted to access nonexistent global variable '" .. tostring_(name) .. "'", 3)
end

local function refuse_view(t)
  if backing[t] then error("Attempt to modify a readonly table", 0) end
end

-- Redis's builtins, adjusted for views ------------------------------------------------------

function G.rawset(t, k, x)
  refuse_view(t)
  return rawset(t, k, x)
end

function G.rawget(t, k)
  return rawget(backing[t] or t, k)
end

function G.setmetatable(t, mt)
  refuse_view(t)
  return setmetatable(t, mt)
end

local function view_next(t, k)
  return next(backing[t] or t, k)
end
G.next = view_next

function G.pairs(t)
  if type(t) ~= "table" then
    local pairs = pairs_
    return pairs(t)
  end
  return view_next, t, nil
end

function G.ipairs(t)
  local ipairs = ipairs_
  return ipairs(backing[t] or t)
end

-- Lua 5.1.5's unpack computes the count of a huge range with an int that overflows (Redis
-- patches its Lua for this): a range that cannot fit on the stack is refused first.
function G.unpack(t, ...)
  local unpack = unpack_
  local b = backing[t] or t
  if type(b) == "table" then
    local i, j = ...
    local first = tonumber(i) or (i == nil and 1) or nil
    local last = tonumber(j) or (j == nil and #b) or nil
    if first and last and first <= last and last - first >= 7999 then
      error("too many results to unpack", 2)
    end
  end
  -- As many arguments as the script passed: they count against the same stack room.
  return unpack(b, ...)
end

local tablelib = G.table
function tablelib.insert(t, ...)
  refuse_view(t)
  local insert = tinsert
  return insert(t, ...)
end
function tablelib.remove(t, ...)
  refuse_view(t)
  local remove = tremove
  return remove(t, ...)
end
function tablelib.sort(t, ...)
  refuse_view(t)
  local sort = tsort
  return sort(t, ...)
end
function tablelib.concat(t, ...)
  local concat = tconcat
  return concat(backing[t] or t, ...)
end

-- A run that was stopped (instruction budget, SCRIPT KILL) cannot be caught by the script.
local function rethrow(ok, ...)
  if not ok then
    if rt.aborted() then error((...), 0) end
    local e = ...
    -- Redis's pcall gives the text of an error table (redis.call's errors).
    if type(e) == "table" and type(rawget(e, "err")) == "string" then
      return false, rawget(e, "err")
    end
  end
  return ok, ...
end

function G.pcall(f, ...)
  return rethrow(pcall_(f, ...))
end

function G.xpcall(f, handler)
  return rethrow(xpcall_(f, handler))
end

function G.coroutine.resume(co, ...)
  local function pass(ok, ...)
    if not ok and rt.aborted() then error((...), 0) end
    return ok, ...
  end
  return pass(resume_(co, ...))
end

-- Binary chunks could break out of the sandbox: only source is loaded.
local loadstring_, load_ = loadstring, load
function G.loadstring(s, name)
  if type(s) == "string" and byte(s, 1) == 27 then
    return nil, "attempt to load a binary chunk"
  end
  return loadstring_(s, name)
end

function G.load(f, name)
  if type(f) ~= "function" then
    return load_(f, name)
  end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == "" then break end
    if type(piece) ~= "string" then return nil, "reader function must return a string" end
    parts[#parts + 1] = piece
  end
  return G.loadstring(tconcat(parts), name)
end

-- Addresses differ from node to node: print objects by their order of first print in the run.
local ids, next_id = nil, 0
function G.tostring(x)
  local t = type(x)
  if t == "table" or t == "function" or t == "thread" or t == "userdata" then
    local mt = getmetatable(x)
    if type(mt) ~= "table" or rawget(mt, "__tostring") == nil then
      ids = ids or setmetatable({}, { __mode = "k" })
      local id = ids[x]
      if not id then
        next_id = next_id + 1
        id = next_id
        ids[x] = id
      end
      return format("%s: 0x%08x", t, id)
    end
  end
  return tostring_(x)
end

-- Memory figures differ from node to node, and stopping the collector would outlive the run.
local collect = collectgarbage
local gc_options = { collect = 0, count = 0, step = false, stop = 0, restart = 0, setpause = 0, setstepmul = 0 }
function G.collectgarbage(opt)
  opt = opt or "collect"
  local answer = gc_options[opt]
  if answer == nil then
    error(format("bad argument #1 to 'collectgarbage' (invalid option '%s')", tostring_(opt)), 2)
  end
  if opt == "collect" then collect("collect") end
  return answer
end
function G.gcinfo()
  return 0
end

-- math.random and math.randomseed on the run's own lrand48 (seeded from the request).
local mathlib = G.math
function mathlib.random(...)
  local r = rt.rand()
  local n = select("#", ...)
  if n == 0 then return r end
  local u = floor(tonumber((...)) or error("bad argument #1 to 'random' (number expected)", 2))
  if n == 1 then
    if u < 1 then error("bad argument #1 to 'random' (interval is empty)", 2) end
    return floor(r * u) + 1
  elseif n == 2 then
    local l = u
    u = floor(tonumber((select(2, ...))) or error("bad argument #2 to 'random' (number expected)", 2))
    if l > u then error("bad argument #2 to 'random' (interval is empty)", 2) end
    return floor(r * (u - l + 1)) + l
  end
  error("wrong number of arguments", 2)
end
function mathlib.randomseed(seed)
  rt.srand(floor(tonumber(seed) or error("bad argument #1 to 'randomseed' (number expected)", 2)))
end

-- The redis table ----------------------------------------------------------------------------

local redis = {}
G.redis = redis

redis.call = rt.call

redis.pcall = rt.pcall

-- An error table as Redis builds it: "-CODE message" keeps its code, other text gets ERR.
local function error_table(text)
  if byte(text, 1) == 45 then
    local space = string.find(text, " ", 1, true)
    if space then
      return { err = string.sub(text, 2, space - 1) .. " " .. string.gsub(string.sub(text, space + 1), "[\r\n]+$", "") }
    end
    return { err = "ERR " .. string.sub(text, 2) }
  end
  return { err = "ERR " .. string.gsub(text, "[\r\n]+$", "") }
end

function redis.error_reply(text)
  if select("#", text) ~= 1 or type(text) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  if byte(text, 1) ~= 45 then text = "-" .. text end
  return error_table(text)
end

function redis.status_reply(text)
  if type(text) ~= "string" then
    return error_table("wrong number or type of arguments")
  end
  return { ok = text }
end

-- The functions below return `true, result` or `false, error`; `rt.raising` makes each a C
-- closure that raises the error from the script's own frame (as Redis's C functions do).
local raising = rt.raising

redis.sha1hex = raising(function(...)
  if select("#", ...) ~= 1 then return false, error_table("wrong number of arguments") end
  return true, rt.sha1hex(tostring_((...)))
end)

redis.log = raising(function(level, ...)
  if select("#", ...) < 1 then return false, error_table("redis.log() requires two arguments or more.") end
  if type(level) ~= "number" then return false, error_table("First argument must be a number (log level).") end
  if level < 0 or level > 3 then return false, error_table("Invalid debug level.") end
  local parts = {}
  for i = 1, select("#", ...) do
    local x = select(i, ...)
    local t = type(x)
    if t == "string" or t == "number" then parts[#parts + 1] = tostring_(x) end
  end
  rt.log(level, tconcat(parts, " "))
  return true, nil
end)

redis.setresp = raising(function(...)
  if select("#", ...) ~= 1 then return false, error_table("redis.setresp() requires one argument.") end
  local v = ...
  if v ~= 2 and v ~= 3 then return false, error_table("RESP version must be 2 or 3.") end
  rt.setresp(v)
  return true, nil
end)

redis.set_repl = raising(function(...)
  if select("#", ...) ~= 1 then return false, error_table("redis.set_repl() requires two arguments.") end
  local flags = tonumber((...)) or 0
  if flags < 0 or flags > 3 or flags ~= floor(flags) then
    return false, error_table("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
  end
  return true, nil
end)

function redis.replicate_commands()
  return true
end

redis.acl_check_cmd = raising(function(...)
  if select("#", ...) == 0 then
    return false, error_table("Please specify at least one argument for this redis lib call")
  end
  if not rt.known_command((...)) then
    return false, error_table("Invalid command passed to redis.acl_check_cmd()")
  end
  return true, true
end)

-- FUNCTION LOAD: the table a library's registrations go to (nil outside a load).
local registering = nil
local flag_names = { ["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true, ["no-cluster"] = true,
                     ["allow-cross-slot-keys"] = true }

redis.register_function = raising(function(...)
  if not registering then
    return false, error_table("redis.register_function can only be called on FUNCTION LOAD command")
  end
  local n = select("#", ...)
  local name, callback, flags, description
  if n == 1 then
    local t = ...
    if type(t) ~= "table" then
      return false, error_table("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
    end
    for k, v in next, t do
      if k == "function_name" then name = v
      elseif k == "callback" then callback = v
      elseif k == "flags" then flags = v
      elseif k == "description" then description = v
      else return false, error_table("unknown argument given to redis.register_function") end
    end
    if name == nil then return false, error_table("redis.register_function must get a function name argument") end
    if callback == nil then return false, error_table("redis.register_function must get a callback argument") end
  elseif n == 2 then
    name, callback = ...
    if type(name) ~= "string" then
      return false, error_table("first argument to redis.register_function must be a string")
    end
    if type(callback) ~= "function" then
      return false, error_table("second argument to redis.register_function must be a function")
    end
  else
    return false, error_table("wrong number of arguments to redis.register_function")
  end
  if type(name) ~= "string" then
    return false, error_table("function_name argument given to redis.register_function must be a string")
  end
  if type(callback) ~= "function" then
    return false, error_table("callback argument given to redis.register_function must be a function")
  end
  if not string.find(name, "^[%w_]+$") then
    -- (Redis 7.0's text says "Library" here.)
    return false, error_table("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
  end
  if registering[name] then return false, error_table("Function already exists in the library") end
  local list = {}
  if flags ~= nil then
    if type(flags) ~= "table" then
      return false, error_table("flags argument to redis.register_function must be a table representing function flags")
    end
    for _, f in ipairs_(backing[flags] or flags) do
      if type(f) ~= "string" or not flag_names[f] then return false, error_table("unknown flag given") end
      list[#list + 1] = f
    end
  end
  if description ~= nil and type(description) ~= "string" then
    return false, error_table("description argument given to redis.register_function must be a string")
  end
  registering[name] = { callback = callback, flags = list, description = description }
  return true, nil
end)

function redis.breakpoint()
  return false
end

function redis.debug()
end

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = rt.version, rt.version_num

-- The libraries Redis loads besides Lua's own (cjson, bit...) are put in G by Rust before
-- this chunk runs. What Redis does not offer goes.
for _, name in ipairs_({ "print", "dofile", "loadfile", "require", "module", "package", "os", "io",
                         "debug", "newproxy", "setfenv", "getfenv" }) do
  G[name] = nil
end

-- The error handler of a run: the error as a table with the place in the script it came from.
local function handler(err)
  -- The script's frame the error came from (Redis reports its source and line).
  local level, info = 2, nil
  while true do
    local i = getinfo(level, "Sl")
    if not i then break end
    if i.what ~= "C" and i.what ~= "tail" and i.source ~= "=raftis" then
      info = i
      break
    end
    level = level + 1
  end
  local reason = rt.aborted()
  if reason then
    err = { err = reason }
  elseif type(err) == "userdata" and rt.error_text(err) then
    -- Raised by a library written in Rust: placed like luaL_error places a C function's.
    local where = info and (info.short_src .. ":" .. info.currentline .. ": ") or ""
    err = { err = "ERR " .. where .. rt.error_text(err) }
  elseif type(err) ~= "table" or backing[err] then
    err = { err = "ERR " .. tostring_(err) }
  end
  if info then
    rawset(err, "source", info.source)
    rawset(err, "line", info.currentline)
  end
  return err
end

-- Runs a compiled script (or a function with its KEYS and ARGV tables) under the handler.
local function run(f, ...)
  ids, next_id = nil, 0
  if select("#", ...) == 0 then return xpcall_(f, handler) end
  local keys, argv = ...
  return xpcall_(function() return f(keys, argv) end, handler)
end

-- Lock everything. The globals' view refuses unknown names.
for k, x in next, G do
  if type(x) == "table" and x ~= G then rawset(G, k, protect(x)) end
end
local string_meta = getmetatable("")
string_meta.__index = G.string
string_meta.__metatable = protect(string_meta)

local globals = {}
backing[globals], views[G] = G, globals
G._G = globals
setmetatable(globals, {
  __index = function(_, name)
    local x = rawget(G, name)
    if x == nil then
      missing(name)
    end
    return x
  end,
  __newindex = readonly,
  __metatable = frozen_meta,
})

-- Function libraries run with their own globals: while FUNCTION LOAD runs the library's code,
-- only a `redis` with register_function and log exists (as in Redis 7.0); when a function runs,
-- everything a script has except KEYS and ARGV (a function gets them as arguments).
local loading = false
local load_redis_api = {
  register_function = redis.register_function, log = redis.log,
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = rt.version, REDIS_VERSION_NUM = rt.version_num,
}
-- Outside a load, `redis.register_function` does not exist (as in Redis 7.0).
redis.register_function = nil

-- Its missing fields are errors too (Redis's library-load `redis` has the globals' metatable).
local load_redis = {}
backing[load_redis] = load_redis_api
setmetatable(load_redis, {
  __index = function(_, name)
    local x = load_redis_api[name]
    if x == nil then
      missing(name)
    end
    return x
  end,
  __newindex = readonly,
  __metatable = false,
})
local function_globals = {}
backing[function_globals] = G
setmetatable(function_globals, {
  __index = function(_, name)
    local x
    if loading then
      if name == "redis" then x = load_redis end
    elseif name ~= "KEYS" and name ~= "ARGV" then
      x = rawget(G, name)
    end
    if x == nil then
      missing(name)
    end
    return x
  end,
  __newindex = readonly,
  __metatable = false,
})

-- Starts (with the table registrations go to) or ends (nil) a library load.
local function set_loading(reg)
  registering, loading = reg, reg ~= nil
end

-- The globals table of the VM (and of every script loaded later), the run function, a way for
-- Rust to set KEYS and ARGV (plain tables, rewritten by every EVAL), the libraries' globals and
-- the library-load switch.
return globals, run, function(keys, argv) rawset(G, "KEYS", keys) rawset(G, "ARGV", argv) end,
  function_globals, set_loading

-- prelude.lua — pure-Lua helpers of the sw module, compiled into the binary.
--
-- Pretty printing for the REPL and notebooks (sw.repr, sw.show), and the
-- memory table (sw.mem). Everything here works on values the C side
-- returns; none of it touches the core directly.

local sw = sw

-- Byte counts as people read them: 512 B, 12.0 MiB, 1.5 GiB.
function sw.format_bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local u, a = 1, math.abs(n)
  while a >= 1024 and u < #units do
    a, n, u = a / 1024, n / 1024, u + 1
  end
  if u == 1 then return string.format("%d B", n) end
  return string.format("%.1f %s", n, units[u])
end

---------------------------------------------------------------- sw.repr ----
-- A readable, bounded rendering of any value: nested tables indented, keys
-- sorted (array part first), cycles marked, long tables cut with a count.

local MAX_ITEMS, MAX_DEPTH, WIDTH = 40, 4, 78

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if t == "number" and math.type(v) == "float" then
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" elseif v == -math.huge then return "-inf" end
    local s = string.format("%.14g", v)
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  end
  if t == "table" or t == "userdata" then
    local mt = getmetatable(v)
    if mt and type(mt) == "table" and mt.__tostring then return tostring(v) end
  end
  return tostring(v)
end

local function repr(v, indent, depth, seen)
  if type(v) ~= "table" then return scalar(v) end
  local mt = getmetatable(v)
  if mt and type(mt) == "table" and mt.__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= MAX_DEPTH then return "{...}" end
  seen[v] = true
  local n, parts, count = #v, {}, 0
  for i = 1, n do
    count = count + 1
    if count > MAX_ITEMS then break end
    parts[#parts + 1] = repr(v[i], indent .. "  ", depth + 1, seen)
  end
  local keys = {}
  for k in pairs(v) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_order)
  for _, k in ipairs(keys) do
    count = count + 1
    if count > MAX_ITEMS then break end
    local ks = is_identifier(k) and k or ("[" .. scalar(k) .. "]")
    parts[#parts + 1] = ks .. " = " .. repr(v[k], indent .. "  ", depth + 1, seen)
  end
  seen[v] = nil
  local total = n + #keys
  if total > MAX_ITEMS then parts[#parts + 1] = string.format("... (%d more)", total - MAX_ITEMS) end
  if #parts == 0 then return "{}" end
  local flat = "{ " .. table.concat(parts, ", ") .. " }"
  if #flat + #indent <= WIDTH and not flat:find("\n") then return flat end
  return "{\n" .. indent .. "  " .. table.concat(parts, ",\n" .. indent .. "  ") .. "\n" .. indent .. "}"
end

function sw.repr(v) return repr(v, "", 0, {}) end

-- Print values the way the REPL echoes them.
function sw.show(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[i] = sw.repr((select(i, ...))) end
  print(table.concat(out, "\t"))
end

----------------------------------------------------------------- sw.mem ----
-- The full memory table: every category on every device, now and peak
-- (since the last sw.mem_reset_peak()), plus the host's resident set.

local MemTable = { __name = "stepwise.MemTable" }

-- The table's cells, shared by the text form here and the HTML form in
-- display.lua: a header row, then one row per line, one column per device.
function sw._mem_rows(m)
  local fb = sw.format_bytes
  local header, rows = { "memory" }, {}
  for _, d in ipairs(m.devices) do header[#header + 1] = d .. " now / peak" end
  local function row(label, get)
    local r = { label }
    for _, d in ipairs(m.devices) do r[#r + 1] = get(m[d]) end
    rows[#rows + 1] = r
  end
  for _, c in ipairs(m.category_names) do
    row(c, function(dev) return fb(dev.categories[c].now) .. " / " .. fb(dev.categories[c].peak) end)
  end
  row("total", function(dev) return fb(dev.now) .. " / " .. fb(dev.peak) end)
  row("limit", function(dev) return dev.limit and fb(dev.limit) or "none" end)
  row("device", function(dev)
    return dev.device_total and (fb(dev.device_free) .. " free of " .. fb(dev.device_total)) or "?"
  end)
  rows[#rows + 1] = { "host rss", fb(m.cpu.rss) .. " (peak " .. fb(m.cpu.rss_peak) .. ")" }
  return header, rows
end

MemTable.__tostring = function(m)
  local header, rows = sw._mem_rows(m)
  local w = 24
  local line = string.format("%-13s", header[1])
  for i = 2, #header do line = line .. string.format("%" .. w .. "s", header[i]) end
  local lines = { line }
  for _, r in ipairs(rows) do
    local s = string.format("  %-11s", r[1])
    if r[1] == "host rss" then
      s = s .. r[2]   -- one value for the host, not a column per device
    else
      for i = 2, #r do s = s .. string.format("%" .. w .. "s", r[i]) end
    end
    lines[#lines + 1] = s
  end
  return table.concat(lines, "\n")
end

-- sw.mem() returns the table and prints it, unless a front end is about to
-- display the value itself (a bare `sw.mem()` in the REPL or a notebook).
function sw.mem(opts)
  if opts ~= nil then
    if type(opts) ~= "table" then error("sw.mem: options must be a table", 2) end
    for k in pairs(opts) do
      if k ~= "quiet" then error(string.format("sw.mem: unknown option '%s' (valid options: quiet)", tostring(k)), 2) end
    end
  end
  local m = setmetatable(sw._mem(), MemTable)
  if not (opts and opts.quiet) and not sw._echoing() then print(m) end
  return m
end

-- Where generated tokens go as they arrive. The Jupyter kernel replaces
-- this to send stream messages; the REPL writes to the terminal.
function sw._stream(text)
  io.write(text)
  io.flush()
end

-------------------------------------------------------- Dataset:stats ----
-- The layout of ds:stats(): the numbers first, then each data check with
-- the rows it found (a few shown, the rest counted), so a bad row is one
-- look away. Dataset:stats (lua/dataset.c) fills the table.

local DatasetStats = { __name = "stepwise.DatasetStats" }
sw._DatasetStats = DatasetStats

local CHECKS = {
  { "skipped", "skipped (bad records)" },
  { "empty", "empty text" },
  { "over_long", "longer than max_len" },
  { "no_alnum", "no letters or digits" },
  { "duplicate", "exact duplicates" },
}

DatasetStats.__tostring = function(s)
  local L = s.length
  local out = {
    string.format("Dataset %s: %d samples (%s)%s", s.path, s.count, s.format,
      s.skipped > 0 and string.format(", %d bad records skipped", s.skipped) or ""),
    string.format("  tokens    %d in all; %d within max_len, %d of them train (%.1f%%)", s.tokens,
      s.tokens_kept, s.trained, 100 * s.trained_fraction),
    string.format("  length    mean %.1f, median %d, p95 %d, p99 %d, max %d (min %d)", L.mean, L.median,
      L.p95, L.p99, L.max, L.min),
    string.format("  max_len   %d: %d sample%s cut; suggested max_len %d (p99 rounded up to 64)", s.max_len,
      s.truncated, s.truncated == 1 and "" or "s", s.suggested_max_len),
    "  checks",
  }
  for _, c in ipairs(CHECKS) do
    local list = s.checks[c[1]]
    local line = string.format("    %-22s %d", c[2], #list)
    if #list > 0 then
      local rows = {}
      for i = 1, math.min(#list, 6) do rows[i] = tostring(list[i].row) end
      line = line .. string.format(": %s%s %s%s (%s %d: %s)", s.row_name, #list > 1 and "s" or "",
        table.concat(rows, ", "), #list > 6 and string.format(" and %d more", #list - 6) or "", s.row_name,
        list[1].row, list[1].what)
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n")
end

-- A batch from ds:batch() shows as a summary line; its fields are the data.
local Batch = { __name = "stepwise.Batch" }
sw._Batch = Batch
Batch.__tostring = function(b)
  return string.format("Batch %d x %d: %d samples, %d tokens (%d padding), %d trained%s; from epoch %d index %d",
    b.rows, b.len, b.n_samples, b.n_tokens, b.rows * b.len - b.n_tokens, b.n_trained,
    b.n_truncated > 0 and string.format(", %d cut to max_len", b.n_truncated) or "", b.epoch, b.index)
end

-- A benchmark's figures as JSON (one flat table: numbers with 4 significant
-- digits, strings quoted, keys sorted), written to path and echoed.
function sw.write_results(path, r)
  local keys = {}
  for k in pairs(r) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = r[k]
    local s = type(v) == "number" and (math.type(v) == "integer" and tostring(v) or string.format("%.4g", v))
      or type(v) == "boolean" and tostring(v) or string.format("%q", tostring(v))
    parts[#parts + 1] = string.format("  %q: %s", k, s)
  end
  local json = "{\n" .. table.concat(parts, ",\n") .. "\n}\n"
  local dir = path:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") end
  local f = assert(io.open(path, "w"))
  f:write(json)
  f:close()
  io.write(json)
  return json
end

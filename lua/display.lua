-- display.lua — rich display for notebooks, compiled into the binary after
-- prelude.lua.
--
-- sw.repr_bundle(v) turns a value into a MIME bundle (always "text/plain",
-- plus "text/html" for stepwise objects and "image/svg+xml" for plots);
-- sw.display(v) hands a bundle to sw._display_hook, which the Jupyter
-- kernel replaces. In a terminal the hook prints the text/plain part, so a
-- script that calls sw.display reads the same everywhere.

local sw = sw

------------------------------------------------------------- bundles ----

-- Every string that reaches HTML or SVG goes through here: token text,
-- file paths and model names are user data.
local function esc(s)
  return (tostring(s):gsub("[&<>\"']", {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end
sw._html_escape = esc

-- A bundle made here carries this metatable so the REPL echoes its text
-- and sw.repr_bundle passes it through.
local Bundle = { __name = "stepwise.Bundle" }
Bundle.__tostring = function(b) return b["text/plain"] end
sw._Bundle = Bundle

function sw.bundle(t)
  if type(t["text/plain"]) ~= "string" then error("sw.bundle: a bundle needs a text/plain string", 2) end
  return setmetatable(t, Bundle)
end

-- A plain table is taken as a bundle when every key is a MIME type with a
-- string value and text/plain is among them.
local function is_bundle(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  if mt == Bundle then return true end
  if mt ~= nil or type(v["text/plain"]) ~= "string" then return false end
  for k, x in pairs(v) do
    if type(k) ~= "string" or not k:find("/", 1, true) or type(x) ~= "string" then return false end
  end
  return true
end

local function type_name(v)
  local mt = getmetatable(v)
  if type(mt) == "table" and type(mt.__name) == "string" then return mt.__name end
  return nil
end

local TABLE_STYLE = 'style="border-collapse:collapse;font-family:monospace;font-size:12px"'
local CELL = 'style="padding:1px 8px;text-align:left"'
local NUM = 'style="padding:1px 8px;text-align:right"'

local function rows_html(caption, rows, header)
  local out = { "<table " .. TABLE_STYLE .. ">" }
  if caption then out[#out + 1] = "<caption style=\"text-align:left;font-weight:bold\">" .. esc(caption) .. "</caption>" end
  if header then
    local h = {}
    for i, c in ipairs(header) do h[i] = "<th " .. (i == 1 and CELL or NUM) .. ">" .. esc(c) .. "</th>" end
    out[#out + 1] = "<tr>" .. table.concat(h) .. "</tr>"
  end
  for _, r in ipairs(rows) do
    local c = {}
    -- columns under a header hold figures (right-aligned); a key/value table reads left to right
    for i, x in ipairs(r) do c[i] = "<td " .. ((i == 1 or not header) and CELL or NUM) .. ">" .. esc(x) .. "</td>" end
    out[#out + 1] = "<tr>" .. table.concat(c) .. "</tr>"
  end
  out[#out + 1] = "</table>"
  return table.concat(out, "\n")
end

-- 134515008 -> "134,515,008"
local function grouped(n)
  local s = tostring(math.tointeger(n) or n)
  local sign, digits = s:match("^(-?)(%d+)$")
  if not digits then return s end
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end

------------------------------------------------------ HTML renderers ----

local html = {}

html["stepwise.MemTable"] = function(m)
  local header, rows = sw._mem_rows(m)
  return rows_html(nil, rows, header)
end

html["stepwise.Model"] = function(m)
  local text = tostring(m)
  local title = text:match("^[^\n]*")
  local ok, c = pcall(function() return m.config end)
  if not ok then return "<pre>" .. esc(text) .. "</pre>" end -- a freed model
  local rows = {
    { "architecture", c.arch },
    { "parameters", grouped(m.n_params) },
    { "weights", m.quant },
    { "layers", c.layers },
    { "hidden", c.hidden },
    { "heads (kv)", string.format("%d (%d), head dim %d", c.heads, c.kv_heads, c.head_dim) },
    { "mlp", c.intermediate },
    { "vocab", c.vocab },
    { "context", string.format("%d of %d", m.max_seq, c.context) },
    { "rope theta", string.format("%g", c.rope_theta) },
    { "tied embeddings", tostring(c.tie_embeddings) },
  }
  if c.sliding_window and c.sliding_window > 0 then rows[#rows + 1] = { "sliding window", c.sliding_window } end
  local mem = text:match("memory: ([^\n]*)")
  if mem then rows[#rows + 1] = { "memory", mem } end
  return rows_html(title, rows)
end

html["stepwise.DatasetStats"] = function(s)
  local L = s.length
  local rows = {
    { "samples", string.format("%d (%s)", s.count, s.format) },
    { "tokens", string.format("%d in all; %d within max_len", s.tokens, s.tokens_kept) },
    { "trained tokens", string.format("%d (%.1f%%)", s.trained, 100 * s.trained_fraction) },
    { "length", string.format("mean %.1f, median %d, p95 %d, p99 %d, max %d, min %d", L.mean, L.median, L.p95,
      L.p99, L.max, L.min) },
    { "max_len", string.format("%d: %d cut; suggested %d", s.max_len, s.truncated, s.suggested_max_len) },
  }
  for _, name in ipairs({ "skipped", "empty", "over_long", "no_alnum", "duplicate" }) do
    local list = s.checks[name] or {}
    local v = tostring(#list)
    if #list > 0 then
      local shown = {}
      for i = 1, math.min(#list, 6) do shown[i] = tostring(list[i].row) end
      v = string.format("%d: %s %s%s (%s)", #list, s.row_name, table.concat(shown, ", "),
        #list > 6 and " ..." or "", list[1].what)
    end
    rows[#rows + 1] = { "check: " .. name, v }
  end
  return rows_html("Dataset " .. tostring(s.path), rows)
end

-- Trained tokens green and bold, masked ones grey; the text is decoded one
-- token at a time so each token lands in exactly one run.
local MASKED = '<span style="color:#8a8a8a">'
local TRAINED = '<span style="color:#0a7d2c;font-weight:bold">'

local function preview_parts(ids, labels, tok, max_len)
  local plain, h, state = {}, {}, nil
  local function close()
    if state == false then plain[#plain + 1] = "\u{27E7}" end
    if state ~= nil then h[#h + 1] = "</span>" end
    state = nil
  end
  for i, id in ipairs(ids) do
    if max_len and i == max_len + 1 then
      close()
      plain[#plain + 1] = "\u{2702}"
      h[#h + 1] = "<span title=\"max_len\">\u{2702}</span>"
    end
    local trained = labels[i] ~= -100
    if trained ~= state then
      close()
      state = trained
      plain[#plain + 1] = trained and "" or "\u{27E6}"
      h[#h + 1] = trained and TRAINED or MASKED
    end
    local ok, piece = pcall(tok.token, tok, id)
    piece = ok and piece or string.format("<%d>", id)
    plain[#plain + 1] = piece
    h[#h + 1] = esc(piece)
  end
  close()
  return table.concat(plain), table.concat(h)
end

local function preview_html(p, tok, max_len, label)
  local n_trained = 0
  for _, l in ipairs(p.labels) do if l ~= -100 then n_trained = n_trained + 1 end end
  local _, body = preview_parts(p.ids, p.labels, tok, max_len)
  return string.format('<div style="font-size:12px"><b>%s</b>: %d tokens, %d trained '
    .. '(%sgreen</span> trains, %sgrey</span> is masked)</div>\n'
    .. '<pre style="white-space:pre-wrap;line-height:1.4">%s</pre>',
    esc(label), #p.ids, n_trained, TRAINED, MASKED, body)
end

html["stepwise.Preview"] = function(p)
  local mt = getmetatable(p)
  local tok = rawget(mt, "__tokenizer")
  if not tok then return nil end
  return preview_html(p, tok, rawget(mt, "__max_len"), "sample " .. tostring(rawget(mt, "__sample") or "")
    .. " (row " .. tostring(p.row) .. ")")
end

html["stepwise.Tensor"] = function(t)
  local text = tostring(t)
  local head, rest = text:match("^([^\n]*)\n?(.*)$")
  return "<div style=\"font-family:monospace;font-size:12px\"><b>" .. esc(head) .. "</b></div>"
    .. (rest ~= "" and ("<pre>" .. esc(rest) .. "</pre>") or "")
end

-- ds:preview(i) is made in C with a fresh metatable per result; record the
-- tokenizer and max_len there so the HTML renderer can decode the tokens.
do
  local reg = debug.getregistry()["stepwise.Dataset"]
  local methods = reg and reg.__methods
  local preview = methods and methods.preview
  if preview then
    methods.preview = function(ds, i, ...)
      local p = preview(ds, i, ...)
      local mt = getmetatable(p)
      if type(mt) == "table" then
        mt.__tokenizer, mt.__max_len, mt.__sample = ds.tokenizer, ds.max_len, i
      end
      return p
    end
  end
end

------------------------------------------------------------ public API ----

function sw.repr_bundle(v)
  if is_bundle(v) then
    local copy = {}
    for k, x in pairs(v) do copy[k] = x end
    return copy
  end
  local b = { ["text/plain"] = sw.repr(v) }
  local render = html[type_name(v)]
  if render then
    local ok, h = pcall(render, v)
    if ok and h then b["text/html"] = h end
  end
  return b
end

-- The default hooks: a terminal has no rich output and nothing to clear.
function sw._display_hook(bundle, display_id, update) -- luacheck: no unused args
  io.write(bundle["text/plain"], "\n")
  io.flush()
end

function sw._clear_hook() end

local display_opts = { display_id = true, update = true }

function sw.display(v, opts)
  if opts ~= nil then
    if type(opts) ~= "table" then error("sw.display: options must be a table", 2) end
    for k in pairs(opts) do
      if not display_opts[k] then
        error(string.format("sw.display: unknown option '%s' (valid options: display_id, update)", tostring(k)), 2)
      end
    end
  end
  local b = sw.repr_bundle(v)
  sw._display_hook(b, opts and opts.display_id, opts and opts.update or false)
end

function sw.clear_output(...) return sw._clear_hook(...) end

-- ds:stats() prints its text unless a front end is echoing; the C side
-- prints through the global `print`, so silencing that for the call leaves
-- only the rich display.
local function quietly(fn, ...)
  local saved = _G.print
  _G.print = function() end
  local ok, r = pcall(fn, ...)
  _G.print = saved
  if not ok then error(r, 0) end
  return r
end

-- sw.display_stats(ds or ds:stats()): the stats table, shown once.
function sw.display_stats(x)
  if type_name(x) == "stepwise.Dataset" then x = quietly(x.stats, x) end
  sw.display(x)
end

-- A sample of ds rendered as ds:preview(i) would be, without printing.
function sw.preview_bundle(ds, i)
  local s = ds:sample(i)
  local plain = select(1, preview_parts(s.ids, s.labels, ds.tokenizer, ds.max_len))
  return sw.bundle({
    ["text/plain"] = string.format("sample %d (row %d): %d tokens, %d trained\n%s", i, s.row, #s.ids, s.n_trained, plain),
    ["text/html"] = preview_html(s, ds.tokenizer, ds.max_len, string.format("sample %d (row %d)", i, s.row)),
  })
end

function sw.display_preview(ds, i) sw.display(sw.preview_bundle(ds, i)) end

------------------------------------------------------------- tr:plot ----
-- Loss (left axis) and learning rate (right axis) per step, as hand-made
-- SVG: no plotting library to install, and it renders in any notebook
-- front end and in a browser.

-- About n round tick values covering [lo, hi]: steps of 1, 2 or 5 x 10^k.
local function ticks(lo, hi, n, whole)
  if hi <= lo then hi = lo + (lo == 0 and 1 or math.abs(lo) * 0.1) end
  local raw = (hi - lo) / n
  if whole and raw < 1 then raw = 1 end -- steps are whole numbers
  local mag = 10 ^ math.floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * mag >= raw then step = m * mag break end
  end
  local t, v = {}, math.floor(lo / step) * step
  while v <= hi + step * 1e-9 do
    if v >= lo - step * 1e-9 then t[#t + 1] = v end
    v = v + step
  end
  return t, step
end

local function fmt(v) return (string.format("%.3g", v):gsub("^%-0$", "0")) end

function sw.plot_history(history, opts)
  opts = opts or {}
  local pts = {}
  for _, h in ipairs(history) do
    if not h.skipped and type(h.loss) == "number" and math.abs(h.loss) < math.huge then pts[#pts + 1] = h end
  end
  local n = #pts
  local plain = string.format("<loss curve: %d step%s>", n, n == 1 and "" or "s")
  local W, H, ml, mr, mt, mb = 640, 320, 60, 64, 34, 40
  local pw, ph = W - ml - mr, H - mt - mb
  local s = { string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="sans-serif" font-size="11">', W, H, W, H),
    string.format('<rect x="0" y="0" width="%d" height="%d" fill="white"/>', W, H),
    string.format('<text x="%d" y="20" text-anchor="middle" font-size="14">%s</text>', W // 2,
      esc(opts.title or string.format("training loss and learning rate (%d step%s)", n, n == 1 and "" or "s"))) }
  if n == 0 then
    s[#s + 1] = string.format('<text x="%d" y="%d" text-anchor="middle" fill="#888">no steps yet</text>', W // 2, H // 2)
    s[#s + 1] = "</svg>"
    return sw.bundle({ ["image/svg+xml"] = table.concat(s, "\n"), ["text/plain"] = plain })
  end
  local x0, x1 = pts[1].step, pts[n].step
  local lmin, lmax, rmax = math.huge, -math.huge, 0
  for _, h in ipairs(pts) do
    lmin, lmax = math.min(lmin, h.loss, h.eval_loss or h.loss), math.max(lmax, h.loss, h.eval_loss or h.loss)
    rmax = math.max(rmax, h.lr or 0)
  end
  local xt = ticks(x0, x1 > x0 and x1 or x0 + 1, 6, true)
  local lt = ticks(lmin, lmax, 5)
  local rt = ticks(0, rmax > 0 and rmax or 1, 4)
  local xa, xb = math.min(x0, xt[1]), math.max(x1, xt[#xt], x0 + 1)
  local la, lb = math.min(lmin, lt[1]), math.max(lmax, lt[#lt])
  if lb <= la then lb = la + 1 end
  local ra, rb = 0, math.max(rmax, rt[#rt])
  local function X(v) return ml + (v - xa) / (xb - xa) * pw end
  local function YL(v) return mt + ph - (v - la) / (lb - la) * ph end
  local function YR(v) return mt + ph - (v - ra) / (rb - ra) * ph end
  -- grid and axes
  for _, v in ipairs(lt) do
    s[#s + 1] = string.format('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>', ml, YL(v), ml + pw, YL(v))
    s[#s + 1] = string.format('<text x="%d" y="%.1f" text-anchor="end" fill="#1f5fa8">%s</text>', ml - 6, YL(v) + 4, fmt(v))
  end
  for _, v in ipairs(rt) do
    s[#s + 1] = string.format('<text x="%d" y="%.1f" fill="#d2691e">%s</text>', ml + pw + 6, YR(v) + 4, fmt(v))
  end
  for _, v in ipairs(xt) do
    s[#s + 1] = string.format('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#444"/>', X(v), mt + ph, X(v), mt + ph + 4)
    s[#s + 1] = string.format('<text x="%.1f" y="%d" text-anchor="middle">%s</text>', X(v), mt + ph + 16, fmt(v))
  end
  s[#s + 1] = string.format('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>', ml, mt, pw, ph)
  s[#s + 1] = string.format('<text x="%d" y="%d" text-anchor="middle">step</text>', ml + pw // 2, H - 6)
  s[#s + 1] = string.format('<text x="14" y="%d" fill="#1f5fa8" transform="rotate(-90 14 %d)" text-anchor="middle">loss</text>',
    mt + ph // 2, mt + ph // 2)
  s[#s + 1] = string.format('<text x="%d" y="%d" fill="#d2691e" transform="rotate(90 %d %d)" text-anchor="middle">lr</text>',
    W - 10, mt + ph // 2, W - 10, mt + ph // 2)
  -- the curves: lr dashed behind, loss in front, eval losses as dots
  -- at most about two points per pixel column: a long run stays a small SVG
  local lr, loss, stride = {}, {}, math.max(1, n // (2 * pw))
  for i, h in ipairs(pts) do
    if (i - 1) % stride == 0 or i == n then
      lr[#lr + 1] = string.format("%.1f,%.1f", X(h.step), YR(h.lr or 0))
      loss[#loss + 1] = string.format("%.1f,%.1f", X(h.step), YL(h.loss))
    end
  end
  s[#s + 1] = '<polyline fill="none" stroke="#d2691e" stroke-width="1.5" stroke-dasharray="4 3" points="'
    .. table.concat(lr, " ") .. '"/>'
  s[#s + 1] = '<polyline fill="none" stroke="#1f5fa8" stroke-width="2" points="' .. table.concat(loss, " ") .. '"/>'
  local evals = false
  for _, h in ipairs(pts) do
    if type(h.eval_loss) == "number" then
      evals = true
      s[#s + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="3.5" fill="#2e8b57"/>', X(h.step), YL(h.eval_loss))
    end
  end
  -- legend
  local lx = ml + pw - 150
  s[#s + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#1f5fa8" stroke-width="2"/>'
    .. '<text x="%d" y="%d">loss</text>', lx, mt + 12, lx + 20, mt + 12, lx + 24, mt + 16)
  s[#s + 1] = string.format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d2691e" stroke-width="1.5" '
    .. 'stroke-dasharray="4 3"/><text x="%d" y="%d">lr</text>', lx + 56, mt + 12, lx + 76, mt + 12, lx + 80, mt + 16)
  if evals then
    s[#s + 1] = string.format('<circle cx="%d" cy="%d" r="3.5" fill="#2e8b57"/><text x="%d" y="%d">eval</text>',
      lx + 106, mt + 12, lx + 114, mt + 16)
  end
  s[#s + 1] = "</svg>"
  return sw.bundle({ ["image/svg+xml"] = table.concat(s, "\n"), ["text/plain"] = plain })
end

-- A trainer shows its settings, its last step and the curve so far.
html["stepwise.Trainer"] = function(tr)
  local h = tr.history
  local out = { '<div style="font-family:monospace;font-size:12px"><b>' .. esc(tostring(tr)) .. "</b></div>" }
  local last = h[#h]
  if last and not last.skipped then
    out[#out + 1] = rows_html(nil, { {
      last.step, string.format("%.4f", last.loss), string.format("%.3g", last.lr),
      string.format("%.3f", last.grad_norm), string.format("%.0f", last.tokens_per_s), sw.format_bytes(last.mem),
    } }, { "last step", "loss", "lr", "grad norm", "tokens/s", "memory" })
  end
  if #h > 0 then out[#out + 1] = sw.plot_history(h)["image/svg+xml"] end
  return table.concat(out, "\n")
end

-- tr:plot(): the bundle; shown at once unless the front end is about to
-- display the returned value itself (a bare `tr:plot()` in the REPL or a
-- notebook), as sw.mem() does.
do
  local reg = debug.getregistry()["stepwise.Trainer"]
  if reg and reg.__methods then
    reg.__methods.plot = function(tr, opts)
      local b = sw.plot_history(tr.history, opts)
      if not sw._echoing() then sw.display(b) end
      return b
    end
  end
end

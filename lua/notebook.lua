-- notebook.lua — sw.to_ipynb(path [, out]): a `-- %%` script as a Jupyter
-- notebook (nbformat 4.5), compiled into the binary after display.lua.
--
-- The cells are split as repl/script.c splits them, so the notebook runs
-- exactly the chunks a script run or a replay runs. Comment-only cells are
-- prose and become markdown; a cell's title becomes a "## title" markdown
-- cell above its code, which is how a notebook reader scans for sections.
-- The output is deterministic (cell ids from the file name and the cell's
-- position, no timestamps, keys sorted, nbformat's own indentation), so a
-- committed notebook can be checked against its script byte for byte.

local sw = sw

-- "-- %%" with optional blanks around "--": the title (trimmed) or nil.
local function marker(line)
  local title = line:match("^[ \t]*%-%-[ \t]*%%%%(.*)$")
  if not title then return nil end
  return (title:gsub("^[ \t]+", ""):gsub("[ \t\r]+$", ""))
end

local function lines_of(text)
  local out = {}
  for l in (text .. "\n"):gmatch("(.-)\r?\n") do out[#out + 1] = l end
  if text:sub(-1) == "\n" then out[#out] = nil end -- the last newline ends a line, not starts one
  return out
end

-- Cells as {title=, lines=}; the text before the first marker is a cell
-- only if it holds something (as in script.c).
local function split(text)
  local lines = lines_of(text)
  if lines[1] and lines[1]:sub(1, 2) == "#!" then table.remove(lines, 1) end
  local cells, cur = {}, { title = "", lines = {} }
  for _, l in ipairs(lines) do
    local t = marker(l)
    if t then
      cells[#cells + 1] = cur
      cur = { title = t, lines = {} }
    else
      cur.lines[#cur.lines + 1] = l
    end
  end
  cells[#cells + 1] = cur
  if #cells > 1 and cells[1].title == "" and not table.concat(cells[1].lines):find("%S") then
    table.remove(cells, 1)
  end
  return cells
end

local function trim_blank(lines)
  local a, b = 1, #lines
  while a <= b and not lines[a]:find("%S") do a = a + 1 end
  while b >= a and not lines[b]:find("%S") do b = b - 1 end
  return table.move(lines, a, b, 1, {})
end

local function comments_only(lines)
  for _, l in ipairs(lines) do
    if l:find("%S") and not l:match("^[ \t]*%-%-") then return false end
  end
  return true
end

-- nbformat stores a cell's source as its lines, each but the last ending in "\n".
local function source(lines)
  local out = setmetatable({}, { array = true })
  for i, l in ipairs(lines) do out[i] = i < #lines and (l .. "\n") or l end
  return out
end

------------------------------------------------------------------ JSON ----
-- As Python's json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False)
-- writes it, which is what nbformat.write produces: a notebook saved from
-- Jupyter then differs from ours only where the content does.

local NULL = setmetatable({}, { __name = "null" })

local function jstring(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
                    ["\b"] = "\\b", ["\f"] = "\\f" }
    if named[c] then return named[c] end
    if c == "\127" then return c end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function encode(v, indent, out)
  local t = type(v)
  if v == NULL then out[#out + 1] = "null"
  elseif t == "string" then out[#out + 1] = jstring(v)
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then out[#out + 1] = math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  elseif t == "table" then
    local inner = indent .. " "
    local mt = getmetatable(v)
    if mt and mt.array then
      if #v == 0 then out[#out + 1] = "[]" return end
      out[#out + 1] = "[\n"
      for i, x in ipairs(v) do
        out[#out + 1] = inner
        encode(x, inner, out)
        out[#out + 1] = i < #v and ",\n" or "\n"
      end
      out[#out + 1] = indent .. "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      if #keys == 0 then out[#out + 1] = "{}" return end
      out[#out + 1] = "{\n"
      for i, k in ipairs(keys) do
        out[#out + 1] = inner .. jstring(k) .. ": "
        encode(v[k], inner, out)
        out[#out + 1] = i < #keys and ",\n" or "\n"
      end
      out[#out + 1] = indent .. "}"
    end
  else
    error("sw.to_ipynb: cannot write a " .. t .. " as JSON")
  end
end

local function array(t) return setmetatable(t or {}, { array = true }) end

--------------------------------------------------------------- notebook ----

-- The notebook for a script's text; name (the file's base name) seeds the ids.
function sw.ipynb_of(text, name)
  local stem = (name or "notebook"):gsub("%.lua$", ""):gsub("[^%w_-]", "-"):sub(1, 48)
  local cells = array()
  local function add(kind, lines)
    local c = { cell_type = kind, id = string.format("%s-%02d", stem, #cells + 1), metadata = {}, source = source(lines) }
    if kind == "code" then
      c.execution_count, c.outputs = NULL, array()
    end
    cells[#cells + 1] = c
  end
  for _, cell in ipairs(split(text)) do
    local body = trim_blank(cell.lines)
    if comments_only(body) then
      local md = {}
      if cell.title ~= "" then md[1] = "## " .. cell.title end
      if #md > 0 and #body > 0 then md[2] = "" end
      for _, l in ipairs(body) do
        l = l:gsub("^[ \t]*%-%- ?", "")
        -- A line with aligned columns ("Run it:     ./stepwise ...") keeps
        -- its line break (two trailing blanks); plain prose reflows.
        if l:find("%S  +%S") then l = l:gsub("%s*$", "  ") end
        md[#md + 1] = l
      end
      md = trim_blank(md)
      if #md > 0 then add("markdown", md) end
    else
      if cell.title ~= "" then add("markdown", { "## " .. cell.title }) end
      add("code", body)
    end
  end
  local nb = {
    cells = cells,
    metadata = {
      kernelspec = { name = "stepwise", display_name = "stepwise (Lua)", language = "lua" },
      language_info = { name = "lua", file_extension = ".lua", mimetype = "text/x-lua" },
    },
    nbformat = 4,
    nbformat_minor = 5,
  }
  local out = {}
  encode(nb, "", out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

-- sw.to_ipynb(path [, out]) -> out: writes the notebook next to the script
-- (FILE.lua -> FILE.ipynb) unless out names another file.
function sw.to_ipynb(path, out)
  if type(path) ~= "string" then error("sw.to_ipynb: expected a path to a .lua script", 2) end
  local f, err = io.open(path, "rb")
  if not f then error("sw.to_ipynb: " .. err, 2) end
  local text = f:read("a")
  f:close()
  out = out or (path:gsub("%.lua$", "") .. ".ipynb")
  local nb = sw.ipynb_of(text, path:match("([^/]*)$"))
  local o, werr = io.open(out, "wb")
  if not o then error("sw.to_ipynb: " .. werr, 2) end
  o:write(nb)
  o:close()
  return out
end

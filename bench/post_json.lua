-- wrk script for the "echo" workload: POST the 1 KiB JSON object in payload.json
-- (next to this script) with Content-Type: application/json.
--
-- Everything is set at load time, so wrk builds the request once and sends it
-- unchanged on every connection (no Lua runs per request).
--
-- Set BENCH_PAYLOAD=/path/to/body.json to send another body.

local function script_dir()
   local src = debug.getinfo(1, "S").source
   if src:sub(1, 1) == "@" then
      return src:sub(2):match("(.*/)") or "./"
   end
   return "./"
end

local path = os.getenv("BENCH_PAYLOAD") or (script_dir() .. "payload.json")
local f = assert(io.open(path, "rb"), "post_json.lua: cannot open " .. path)
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

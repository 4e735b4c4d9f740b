-- Stratus identity bench: GET /v3/auth/tokens (validation) where the caller's
-- token (X-Auth-Token) and the token validated (X-Subject-Token) are the same.
-- Env: BENCH_TOKEN (required), BENCH_LUA_DIR (directory of report.lua).
local token = os.getenv("BENCH_TOKEN") or error("BENCH_TOKEN not set")

wrk.method = "GET"
wrk.path = "/v3/auth/tokens"
wrk.headers["X-Auth-Token"] = token
wrk.headers["X-Subject-Token"] = token

dofile((os.getenv("BENCH_LUA_DIR") or ".") .. "/report.lua")

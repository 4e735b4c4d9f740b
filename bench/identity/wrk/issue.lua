-- Stratus identity bench: POST /v3/auth/tokens, password method, scoped to a
-- project. Env: BENCH_USER (admin), BENCH_PASSWORD (required), BENCH_PROJECT
-- (admin), BENCH_DOMAIN (Default), BENCH_LUA_DIR (directory of report.lua).
local user = os.getenv("BENCH_USER") or "admin"
local password = os.getenv("BENCH_PASSWORD") or error("BENCH_PASSWORD not set")
local project = os.getenv("BENCH_PROJECT") or "admin"
local domain = os.getenv("BENCH_DOMAIN") or "Default"

wrk.method = "POST"
wrk.path = "/v3/auth/tokens"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"auth":{"identity":{"methods":["password"],"password":{"user":' ..
  '{"name":"%s","domain":{"name":"%s"},"password":"%s"}}},' ..
  '"scope":{"project":{"name":"%s","domain":{"name":"%s"}}}}}',
  user, domain, password, project, domain)

dofile((os.getenv("BENCH_LUA_DIR") or ".") .. "/report.lua")

# Flattens a JSON document into one line per scalar: "<path>\t<value>".
# A path joins object keys and array indexes with "/" (meta_data.json's
# {"public_keys": {"k": "ssh-ed25519 AAAA k"}} gives "public_keys/k\tssh-ed25519 AAAA k").
# Strings are unescaped; \n, \r and \t become spaces so that a value stays on
# its line; null, true, false and numbers are printed as written.
# Usage: awk -f json.awk meta_data.json

BEGIN { RS = "\001" }

{ doc = doc $0 }

END {
  s = doc
  n = length(s)
  i = 1
  value("")
}

function skip_space() {
  while (i <= n && index(" \t\r\n", substr(s, i, 1)) > 0) i++
}

function value(path,    c) {
  skip_space()
  c = substr(s, i, 1)
  if (c == "{") object(path)
  else if (c == "[") array(path)
  else if (c == "\"") print path "\t" string()
  else if (match(substr(s, i, 64), /^[-+0-9.eEa-z]+/)) {
    print path "\t" substr(s, i, RLENGTH)
    i += RLENGTH
  } else {
    i = n + 1
  }
}

function object(path,    key, c) {
  i++
  skip_space()
  if (substr(s, i, 1) == "}") { i++; return }
  while (i <= n) {
    skip_space()
    key = string()
    skip_space()
    i++
    value(path == "" ? key : path "/" key)
    skip_space()
    c = substr(s, i, 1)
    i++
    if (c != ",") return
  }
}

function array(path,    k, c) {
  i++
  skip_space()
  if (substr(s, i, 1) == "]") { i++; return }
  for (k = 0; i <= n; k++) {
    value(path == "" ? k : path "/" k)
    skip_space()
    c = substr(s, i, 1)
    i++
    if (c != ",") return
  }
}

function string(    out, c, e, code) {
  out = ""
  if (substr(s, i, 1) != "\"") return out
  i++
  while (i <= n) {
    if (match(substr(s, i), /^[^"\\]+/)) {
      out = out substr(s, i, RLENGTH)
      i += RLENGTH
    }
    c = substr(s, i, 1)
    if (c == "\"") { i++; return out }
    if (c != "\\") return out
    e = substr(s, i + 1, 1)
    i += 2
    if (e == "n" || e == "r" || e == "t") out = out " "
    else if (e == "b" || e == "f") out = out ""
    else if (e == "u") {
      code = hex(substr(s, i, 4))
      i += 4
      out = out (code >= 32 && code < 127 ? sprintf("%c", code) : "?")
    } else out = out e
  }
  return out
}

function hex(h,    k, v, d) {
  v = 0
  h = tolower(h)
  for (k = 1; k <= length(h); k++) {
    d = index("0123456789abcdef", substr(h, k, 1))
    if (d == 0) return -1
    v = v * 16 + d - 1
  }
  return v
}

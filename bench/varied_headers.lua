-- wrk script: a browser-like header section (~450 bytes, 7 fields) that differs on every
-- request -- a Cookie and an X-Request-Id that change each time -- as a server behind a proxy
-- or serving many browsers sees. Used by run.py for the "varied" header mode.
local counter = 0
request = function()
  counter = counter + 1
  local headers = {}
  headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
  headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
  headers["Accept-Language"] = "en-GB,en;q=0.9"
  headers["Accept-Encoding"] = "gzip, deflate, br"
  headers["Cookie"] = "session=" .. tostring(counter * 7919) .. "abcdef; theme=dark; visits=" .. tostring(counter)
  headers["X-Request-Id"] = "req-" .. tostring(counter) .. "-" .. tostring(math.random(1000000))
  headers["Referer"] = "http://127.0.0.1/page/" .. tostring(counter % 97)
  return wrk.format(nil, wrk.path, headers)
end

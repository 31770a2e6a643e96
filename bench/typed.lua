-- The typed endpoint's request (bench/typed_bench.py): three query parameters and a small
-- JSON body, with a request id that changes on every request. The path is wrk's URL's.
local counter = 0
wrk.method = "POST"
wrk.body = '{"name":"widget","qty":3,"price":9.5}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0"
wrk.headers["Accept"] = "application/json"

request = function()
    counter = counter + 1
    wrk.headers["X-Request-Id"] = string.format("%08x-%d", math.random(0, 0x7fffffff), counter)
    return wrk.format(nil, wrk.path .. "?limit=20&offset=" .. (counter % 50) .. "&active=true")
end

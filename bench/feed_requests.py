"""Feed N requests to one HTTPProtocol over a fake transport, in process: the workload that
bench/instructions.sh counts instructions of.

    python bench/feed_requests.py REPO PATH varied|same N

REPO is a checkout of pixie_web (its bench/apps/pixie_app.py is the app); "varied" sends a
browser-like header section that changes on every request, "same" a two-field one.
NOCACHE=1 turns the header-section cache off.
"""
import sys, os
repo, path, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, repo); sys.path.insert(0, os.path.join(repo, "bench", "apps"))
import asyncio, pixie_app, pixie_web as pw
class T:
    def write(self, d): pass
    def is_closing(self): return False
    def get_extra_info(self, n, d=None): return ("127.0.0.1", 5555) if n == "peername" else d
    def close(self): pass
    def pause_reading(self): pass
    def resume_reading(self): pass
def req(i):
    if mode == "varied":
        return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
             f"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\n"
             f"Cookie: session={i*7919}abcdef; theme=dark; visits={i}\r\nX-Request-Id: req-{i}-{i*31%1000000}\r\nReferer: http://127.0.0.1/page/{i%97}\r\n\r\n").encode()
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".encode()
reqs = [req(i) for i in range(n)]
loop = asyncio.new_event_loop()
if os.environ.get("NOCACHE"): pixie_app.app._head_cache = None
server = pw._Server(pixie_app.app, loop)
p = pw.HTTPProtocol(server); p.connection_made(T())
for r in reqs: p.data_received(r)

"""Figure 11: the JSON poll through nginx (deploy/nginx.conf as it is, via
launcher.Nginx) in front of one web host against two, and straight to one
host without nginx, in the same run: interleaved rounds, medians and the
spread (min-max).

A "host" here is a web server process group (granian, 2 processes) on its
own loopback port, all on this machine's 2 cores: the figure says what
nginx and a second host cost or give when everything shares two cores, not
what two machines would give.

The load comes from many source addresses (127.0.2.x), one connection
each: nginx limits the poll per address (50/s, burst 200), as it would a
real crowd; wrk cannot pick its source address, so an asyncio client does
(it shares the 2 cores too). A 429 or any other error fails the round.
"""

import asyncio
import sys
import time

from common import Person, Stack, create_event, free_port, median, result

ROUNDS, SECONDS, ADDRESSES, WORKERS = 7, 4, 128, 2


async def closed_loop(url: str, cookie: str) -> float:
    """Polls/s from ADDRESSES clients, each sending its next poll as soon
    as the last one is answered, for SECONDS."""
    import aiohttp

    answered, errors = 0, {}

    async def client(address: str) -> None:
        nonlocal answered
        connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            while time.monotonic() < deadline:
                async with session.get(url, headers={"Cookie": cookie}) as response:
                    await response.read()
                    if response.status == 200:
                        answered += 1
                    else:
                        errors[response.status] = errors.get(response.status, 0) + 1

    deadline = time.monotonic() + SECONDS
    addresses = [f"127.0.2.{i + 1}" for i in range(ADDRESSES)]
    await asyncio.gather(*(client(address) for address in addresses))
    if errors:
        raise RuntimeError(f"{url}: error answers {errors}")
    return answered / SECONDS


def spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main() -> int:
    from app import launcher

    with Stack() as stack:
        event_id = create_event(stack)
        hosts = [stack.start_web(WORKERS) for _ in range(2)]
        person = Person(hosts[0], "poller@example.com")
        assert person.call("POST", f"/api/events/{event_id}/queue")[0] == 200
        upstreams = [base.removeprefix("http://") for base in hosts]
        proxies = {
            count: launcher.Nginx(
                stack.tmp / f"nginx-{count}",
                upstreams[:count],
                f"127.0.0.1:{free_port()}",
                access_log=False,
            ).start()
            for count in (1, 2)
        }
        try:
            bases = {
                "one host, no nginx": hosts[0],
                "nginx, one host": proxies[1].url,
                "nginx, two hosts": proxies[2].url,
            }
            path = f"/api/events/{event_id}/queue"
            rates = {name: [] for name in bases}
            for _ in range(ROUNDS):
                for name, base in bases.items():
                    rates[name].append(asyncio.run(closed_loop(base + path, person.cookie)))
                    time.sleep(1)  # the per-address buckets refill between rounds
        finally:
            for proxy in proxies.values():
                proxy.stop()

    rps = {name: median(values) for name, values in rates.items()}
    two_vs_one = rps["nginx, two hosts"] / rps["nginx, one host"]
    nginx_cost = rps["nginx, one host"] / rps["one host, no nginx"]
    result(
        11,
        "JSON poll through nginx: two hosts vs one",
        "; ".join(f"{name} {rps[name]:,.0f} polls/s ({spread(rates[name])})" for name in bases)
        + f"; two hosts = {two_vs_one:.2f}x one host, nginx = {nginx_cost:.2f}x no nginx",
        "measured (2 cores: no gain expected)",
        None,
        rounds=rates,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

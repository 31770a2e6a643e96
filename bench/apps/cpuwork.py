"""CPU-bound work for the pool benchmarks (module level, so pool workers import it)."""


def burn(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


def trivial(x=None):
    return "ok"

# Per-round ratios of a BenchmarkConsume session: python3 consume-summary.py <go test -bench output>
# (rounds end with the watermill line; medians and spread of each ratio, then each implementation).
import sys, statistics as st
rounds=[]; cur={}
for line in open(sys.argv[1]):
    if not line.startswith('Benchmark'): continue
    f=line.split()
    impl=f[0].split('impl=')[1].rsplit('-2',1)[0]
    vals={f[i+1]:float(f[i]) for i in range(2,len(f)-1) if not f[i][0].isalpha()}
    cur[impl]=vals
    if impl=='watermill': rounds.append(cur); cur={}
def show(name, fn):
    xs=sorted(fn(r) for r in rounds)
    print(f"{name}: median {st.median(xs):.2f} [{xs[0]:.2f}..{xs[-1]:.2f}]  {['%.2f'%x for x in xs]}")
rs=lambda r,i: r[i]['records/s']; cpu=lambda r,i: r[i]['cpu-ns/record']
show('evbus/watermill', lambda r: rs(r,'evbus')/rs(r,'watermill'))
show('evbus/bare', lambda r: rs(r,'evbus')/rs(r,'franz-go+hamba'))
show('bare/watermill', lambda r: rs(r,'franz-go+hamba')/rs(r,'watermill'))
show('least/watermill', lambda r: rs(r,'franz-go+hamba+ce-least')/rs(r,'watermill'))
show('evbus/ce', lambda r: rs(r,'evbus')/rs(r,'franz-go+hamba+ce'))
show('evbus cpu/ce cpu', lambda r: cpu(r,'evbus')/cpu(r,'franz-go+hamba+ce'))
show('evbus cpu/least cpu', lambda r: cpu(r,'evbus')/cpu(r,'franz-go+hamba+ce-least'))
for i in ['franz-go+hamba','franz-go+hamba+ce','franz-go+hamba+ce-least','evbus','watermill']:
    xs=sorted(r[i]['records/s'] for r in rounds); cs=sorted(r[i]['cpu-ns/record'] for r in rounds)
    print(f"{i}: records/s median {st.median(xs):.0f} [{xs[0]:.0f}..{xs[-1]:.0f}] cpu-ns {st.median(cs):.0f}")

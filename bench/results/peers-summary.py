import re,sys,statistics as st
rounds=[]; cur={}
for line in open(sys.argv[1]):
    m=re.match(r'Benchmark(\S+?)-2\s+\d+\s+(.*)',line)
    if m:
        name=m.group(1); f=m.group(2).split()
        vals={f[i+1]:float(f[i]) for i in range(0,len(f)-1,2)}
        if name in cur: rounds.append(cur); cur={}
        cur[name]=vals
    if line.startswith('PASS'):
        rounds.append(cur); cur={}
rounds=[r for r in rounds if r]
print(len(rounds),'rounds')
names=[]
for r in rounds:
    for n in r:
        if n not in names: names.append(n)
def fmt(x): return f'{x:,.4g}'
for n in names:
    for unit in rounds[0][n]:
        xs=[r[n][unit] for r in rounds if n in r]
        print(f'{n:50s} {unit:14s} median {fmt(st.median(xs)):>10s}  min {fmt(min(xs))}  max {fmt(max(xs))}  n={len(xs)}')
def ratios(label,a,b,unit,inv=False):
    xs=[r[a][unit]/r[b][unit] for r in rounds if a in r and b in r]
    print(f'{label:60s} median {st.median(xs):.3g}x  min {min(xs):.3g}  max {max(xs):.3g}')
O='Outbox/op='
ratios('drain evbus/watermill events/s',O+'drain/impl=evbus',O+'drain/impl=watermill','events/s')
ratios('drain cpu watermill/evbus',O+'drain/impl=watermill',O+'drain/impl=evbus','cpu-ns/event')
for u in ['p50-ms','p99-ms']:
    ratios('latency watermill/evbus '+u,O+'latency/impl=watermill',O+'latency/impl=evbus',u)
    ratios('latency watermill-poll10ms/evbus '+u,O+'latency/impl=watermill-poll10ms',O+'latency/impl=evbus',u)
I='Idempotent/impl='
ratios('idem evbus/watermill effects/s',I+'evbus',I+'watermill','effects/s')
ratios('idem evbus/watermill-pgdedup effects/s',I+'evbus',I+'watermill-pgdedup','effects/s')
ratios('idem cpu watermill/evbus',I+'watermill',I+'evbus','cpu-ns/effect')
ratios('idem cpu watermill-pgdedup/evbus',I+'watermill-pgdedup',I+'evbus','cpu-ns/effect')

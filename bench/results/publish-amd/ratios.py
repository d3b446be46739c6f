import sys,re,statistics,collections
# per process block: keep the last (warm) line of each impl; ratio = baseline cpu / evbus cpu
blocks=[];cur=None
for l in open(sys.argv[1]):
    if l.startswith('# '):
        cur={'bin':l.split()[1].split('/')[-1],'lines':{}}; blocks.append(cur); continue
    m=re.search(r'impl=(\S+?)-2\s+\d+\s+(\d+) ns/op\s+(\d+) cpu-ns/record\s+(\d+) records/s\s+(\d+) B/op\s+(\d+) allocs',l)
    if m and cur is not None: cur['lines'][m.group(1)]=tuple(int(x) for x in m.groups()[1:])
by=collections.defaultdict(lambda: collections.defaultdict(list))
for b in blocks:
    e=b['lines'].get('evbus'); c=b['lines'].get('franz-go+hamba+ce')
    if not e or not c: continue
    by[b['bin']]['evbus_cpu'].append(e[1]); by[b['bin']]['ce_cpu'].append(c[1])
    by[b['bin']]['cpu_ratio'].append(c[1]/e[1]); by[b['bin']]['rps_ratio'].append(e[2]/c[2])
    by[b['bin']]['evbus_allocs'].append(e[4]); by[b['bin']]['evbus_B'].append(e[3]); by[b['bin']]['ce_B'].append(c[3]); by[b['bin']]['ce_rps'].append(c[2]); by[b['bin']]['evbus_rps'].append(e[2])
for k,v in by.items():
    print(k, 'n=%d'%len(v['cpu_ratio']), 'evbus cpu med %d [%d..%d]'%(statistics.median(v['evbus_cpu']),min(v['evbus_cpu']),max(v['evbus_cpu'])), 'ce cpu med %d'%statistics.median(v['ce_cpu']),
      'CPU ratio med %.2fx [%.2f..%.2f]'%(statistics.median(v['cpu_ratio']),min(v['cpu_ratio']),max(v['cpu_ratio'])),
      'rec/s ratio med %.2fx [%.2f..%.2f]'%(statistics.median(v['rps_ratio']),min(v['rps_ratio']),max(v['rps_ratio'])),
      'evbus rec/s %d ce rec/s %d B %d/%d allocs %d'%(statistics.median(v['evbus_rps']),statistics.median(v['ce_rps']),statistics.median(v['evbus_B']),statistics.median(v['ce_B']),v['evbus_allocs'][0]))

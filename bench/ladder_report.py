"""bench/ladder.sh's report: the tables, the targets, ladder.json and ladder.svg, from the lines
ladder-driver appended (one JSON object per row). A tool, not a lesson:

    python3 bench/ladder_report.py RESULTS.jsonl --machine TEXT --software TEXT \\
        --json OUT.json --svg OUT.svg

Prints one table per number of connections, then the targets, checked at the largest number.
Exit status 1 when a target is missed. The chart is drawn from the figures of the largest
number of connections, for the rows that served every connection.
"""
import argparse
import json
import math
import sys

# The rows, in the order of the tables, with the names the tables and the chart show.
ROWS = {
    'floor': 'floor (tokio)',
    'floor-epoll': 'floor (epoll)',
    'floor-log': 'floor + log line',
    'lesson09': 'lesson 09 threads',
    'lesson10': 'lesson 10 pool',
    'lesson11': 'lesson 11 epoll loop',
    'lesson12': 'lesson 12 tokio',
    'lesson12-t2': 'lesson 12 --threads 2',
    'py-socketserver': 'Python ThreadingTCPServer',
    'py-selectors': 'Python selectors',
    'py-asyncio': 'Python asyncio',
    'py-gevent': 'Python gevent',
}
# The chart: one bar per way of serving, the floor first (the floors' variants and the pool,
# which serves only as many clients as it has workers, are in the tables only).
CHART = ['floor', 'lesson09', 'lesson11', 'lesson12', 'lesson12-t2',
         'py-socketserver', 'py-selectors', 'py-asyncio', 'py-gevent']
PYTHON = ['py-socketserver', 'py-selectors', 'py-asyncio', 'py-gevent']


def ms(v):
    if v is None:
        return '-'
    if v < 10:
        return '%.2f ms' % v
    if v < 1000:
        return '%.1f ms' % v
    return '%.2f s' % (v / 1000)


def fmt(v, spec):
    return '-' if v is None else spec % v


def table(rows, n):
    first = rows[0]
    loads = [l for r in rows for l in r['load'] if l is not None]
    print('%d connections, %d round trips each; each row from its pass with the least other '
          'work (load average %.2f-%.2f)' % (n, first['rounds'], min(loads), max(loads)))
    floor = next((r for r in rows if r['label'] == 'floor'), None)
    line = '%-26s %11s %8s %8s %8s %9s %7s %8s %7s %8s %6s %4s'
    print(line % ('', 'served', 'trips/s', 'p50', 'p99', 'CPU/trip', 'x floor', 'KiB/conn',
                  'threads', 'driver', 'others', 'pass'))
    for r in rows:
        s = r['server']
        cpu = s['cpu_us_per_trip']
        ratio = None
        if floor and cpu is not None and floor['server']['cpu_us_per_trip']:
            ratio = cpu / floor['server']['cpu_us_per_trip']
        print(line % (
            ROWS.get(r['label'], r['label']),
            '%d/%d' % (r['served'], r['clients']),
            fmt(r['per_second'], '%.0f'),
            ms(r['p50_ms']), ms(r['p99_ms']),
            fmt(cpu, '%.1f µs'),
            fmt(ratio, '%.2f'),
            fmt(s['kib_per_conn'], '%.2f'),
            fmt(s['threads'], '%d'),
            fmt(r['driver']['cpu_us_per_trip'], '%.1f µs'),
            fmt(r['others_cores'], '%.2f'),
            r.get('pass_shown', '')))
        if r['failures']:
            print('%-26s %s' % ('', '; '.join('%d %s' % (c, why) for why, c in r['failures'].items())))


def targets(rows):
    """The targets at this number of connections: (text, met) pairs."""
    by = {r['label']: r for r in rows}
    out = []

    def cpu(label):
        r = by.get(label)
        return r and r['server']['cpu_us_per_trip']

    def all_served(label):
        r = by.get(label)
        return bool(r) and r['served'] == r['clients']

    for label in ('lesson11', 'lesson12'):
        if label not in by:
            continue
        r = by[label]
        out.append(('%s serves all: %d/%d' % (label, r['served'], r['clients']), all_served(label)))
        kib = r['server']['kib_per_conn']
        out.append(('%s resident per connection <= 2 KiB: %s KiB' % (label, fmt(kib, '%.2f')),
                    kib is not None and kib <= 2))
    fastest = min((by[p] for p in PYTHON if p in by and all_served(p)
                   and by[p]['server']['cpu_us_per_trip'] is not None),
                  key=lambda r: r['server']['cpu_us_per_trip'], default=None)
    floor = cpu('floor')
    if 'lesson11' in by and cpu('lesson11') is not None:
        if fastest:
            f = fastest['server']['cpu_us_per_trip']
            out.append(('lesson11 CPU per round trip <= 0.5x the fastest Python peer (%s, %.1f µs): '
                        '%.1f µs, %.2fx' % (fastest['label'], f, cpu('lesson11'), cpu('lesson11') / f),
                        cpu('lesson11') <= 0.5 * f))
        if floor:
            out.append(('lesson11 CPU per round trip <= 1.0x the floor (%.1f µs): %.1f µs, %.2fx'
                        % (floor, cpu('lesson11'), cpu('lesson11') / floor), cpu('lesson11') <= floor))
    if 'lesson12' in by and cpu('lesson12') is not None and floor:
        out.append(('lesson12 CPU per round trip <= 1.2x the floor (%.1f µs): %.1f µs, %.2fx'
                    % (floor, cpu('lesson12'), cpu('lesson12') / floor), cpu('lesson12') <= 1.2 * floor))
    p99 = lambda label: by[label]['p99_ms']
    if 'lesson12' in by and 'floor' in by and p99('lesson12') and p99('floor'):
        out.append(('lesson12 p99 <= 1.5x the floor (%s): %s, %.2fx'
                    % (ms(p99('floor')), ms(p99('lesson12')), p99('lesson12') / p99('floor')),
                    p99('lesson12') <= 1.5 * p99('floor')))
    if 'lesson09' in by:
        out.append(('lesson09 serves all: %d/%d' % (by['lesson09']['served'], by['lesson09']['clients']),
                    all_served('lesson09')))
        if 'py-socketserver' in by and p99('lesson09') and p99('py-socketserver'):
            out.append(('lesson09 p99 <= 0.1x Python ThreadingTCPServer (%s): %s, %.3fx'
                        % (ms(p99('py-socketserver')), ms(p99('lesson09')),
                           p99('lesson09') / p99('py-socketserver')),
                        p99('lesson09') <= 0.1 * p99('py-socketserver')))
    return out


# The chart's names: the table's, with the course's word for each way (the picture sits in both
# the English and the Chinese README).
CHART_NAMES = {
    'floor': 'floor 下限 (tokio)',
    'lesson09': 'lesson 09 线程 threads',
    'lesson11': 'lesson 11 IO多路复用 epoll',
    'lesson12': 'lesson 12 协程 tokio',
    'lesson12-t2': 'lesson 12 --threads 2',
    'py-socketserver': 'Python ThreadingTCPServer',
    'py-selectors': 'Python selectors',
    'py-asyncio': 'Python asyncio',
    'py-gevent': 'Python gevent',
}


def esc(text):
    return text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def svg(rows, n, machine, software, others):
    """Two panels of horizontal bars, log scales: resident KiB per connection, server CPU µs per
    round trip. The lessons blue, the course's Python orange, the floor grey."""
    by = {r['label']: r for r in rows}
    bars = [by[l] for l in CHART if l in by and by[l]['held'] == by[l]['clients']
            and by[l]['server']['kib_per_conn'] is not None
            and by[l]['server']['cpu_us_per_trip'] is not None]
    partial = [r for r in bars if r['served'] < r['clients']]
    rounds = bars[0]['rounds'] if bars else 0
    left_w, panel_w, gap, bar_h, row_h, top = 210, 280, 150, 16, 24, 100
    width = left_w + 2 * panel_w + gap + 70
    foot = top + row_h * len(bars) + 24
    height = foot + 18 * (len(partial) + 4)
    colour = lambda l: ('#8c8c8c' if l.startswith('floor') else
                        '#3b6fb6' if l.startswith('lesson') else '#e0a030')
    title = ('{:,} connections held open, {} round trips each, lesson 02\'s echo · '
             '{:,} 个连接同时保持，每个连接往返 {} 次'.format(n, rounds, n, rounds))
    desc = ['%s: %.2f KiB per connection, %.1f µs of server CPU per round trip, %d threads, '
            'served %d/%d' % (ROWS.get(r['label'], r['label']), r['server']['kib_per_conn'],
                              r['server']['cpu_us_per_trip'], r['server']['threads'] or 0,
                              r['served'], r['clients']) for r in bars]
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="DejaVu Sans, Noto Sans CJK SC, Microsoft YaHei, PingFang SC, '
           'WenQuanYi Micro Hei, sans-serif" font-size="12">' % (width, height, width, height),
           '<title>%s</title>' % esc(title),
           '<desc>\n%s\n%s; %s; other processes %s cores\n</desc>'
           % (esc('\n'.join(desc)), esc(machine), esc(software), others),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="22" font-size="14" font-weight="bold">%s</text>' % esc(title)]
    panels = [('resident memory per connection (KiB)', '每个连接占用的常驻内存 (KiB)',
               lambda r: max(r['server']['kib_per_conn'], 0.01)),
              ('server CPU time per round trip (µs)', '每次往返服务端用的 CPU 时间 (µs)',
               lambda r: r['server']['cpu_us_per_trip'])]
    for p, (name, name_zh, value) in enumerate(panels):
        x0 = left_w + p * (panel_w + gap)
        vals = [value(r) for r in bars] or [1]
        lo = 10 ** math.floor(math.log10(min(vals)))
        hi = max(10 ** math.ceil(math.log10(max(vals))), lo * 100)
        span = math.log10(hi) - math.log10(lo)
        scale = lambda v: x0 + panel_w * (math.log10(v) - math.log10(lo)) / span
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (x0, top - 48, esc(name)))
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (x0, top - 31, esc(name_zh)))
        decade = lo
        while decade <= hi * 1.0001:
            x = scale(decade)
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#dddddd"/>'
                       % (x, top - 8, x, top + row_h * len(bars)))
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555555">%g</text>'
                       % (x, top - 13, decade))
            decade *= 10
        for i, r in enumerate(bars):
            y = top + i * row_h
            v = value(r)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                       % (x0, y + 2, max(scale(v) - x0, 1), bar_h, colour(r['label'])))
            label = ('%.1f' % v) if v >= 1 else ('%.2f' % v)
            threads = r['server']['threads'] or 0
            if p == 0 and threads > 10:
                label += ' · {:,} threads 线程'.format(threads)
            out.append('<text x="%.1f" y="%d">%s</text>' % (scale(v) + 4, y + 14, label))
    for i, r in enumerate(bars):
        star = ' *' if r in partial else ''
        out.append('<text x="%d" y="%d" text-anchor="end">%s%s</text>'
                   % (left_w - 10, top + i * row_h + 14,
                      esc(CHART_NAMES.get(r['label'], r['label'])), star))
    lines = ['* {}: {:,} of {:,} served; the others waited more than {:g} s for an echo · '
             '只服务了 {:,} 个，其余的等一次回显超过 {:g} 秒'.format(
                 ROWS.get(r['label'], r['label']), r['served'], r['clients'], r['timeout_s'],
                 r['served'], r['timeout_s']) for r in partial]
    lines += ['Log scales · 对数刻度. Memory: the server\'s resident memory with every connection open, '
              'less its size before the first.',
              'Blue: the lessons\' Rust servers · 蓝色：各课的 Rust 服务端. Orange: the course\'s Python · '
              '橙色：课程里的 Python. Grey: the floor · 灰色：下限.',
              machine + '; ' + software + '.',
              'Other processes used %s cores meanwhile. Drawn by bench/ladder.sh from its own run · '
              '由 bench/ladder.sh 根据同一次运行的数据画出。' % others]
    for i, line in enumerate(lines):
        out.append('<text x="10" y="%d" fill="#555555">%s</text>' % (foot + 18 * i, esc(line)))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('results')
    ap.add_argument('--machine', default='')
    ap.add_argument('--software', default='')
    ap.add_argument('--json')
    ap.add_argument('--svg')
    a = ap.parse_args()
    runs = [json.loads(line) for line in open(a.results) if line.strip()]
    # A row run several times (passes): the pass during which the rest of the machine used the
    # least CPU stands for it.
    passes = {}
    for r in runs:
        passes.setdefault((r['label'], r['clients']), []).append(r)
    chosen = []
    for group in passes.values():
        quiet = min(range(len(group)), key=lambda i: (group[i]['others_cores'] is None,
                                                      group[i]['others_cores'] or 0))
        chosen.append(dict(group[quiet], pass_shown='%d/%d' % (quiet + 1, len(group))))
    order = list(ROWS)
    counts = sorted({r['clients'] for r in chosen})
    checked = []
    for n in counts:
        rows = sorted((r for r in chosen if r['clients'] == n),
                      key=lambda r: order.index(r['label']) if r['label'] in order else len(order))
        table(rows, n)
        print()
    if counts:
        n = counts[-1]
        rows = [r for r in chosen if r['clients'] == n]
        checked = targets(rows)
        print('targets at %d connections:' % n)
        for text, met in checked:
            print('  %s  %s' % ('met   ' if met else 'MISSED', text))
        # The chart's footnote is about the rows it shows; lesson 10's round trips last a few
        # milliseconds, too short for /proc/stat's 10 ms ticks.
        busy = [r['others_cores'] for r in rows if r['others_cores'] is not None
                and r['label'] in CHART and r['elapsed_s'] >= 1]
        others = '%.2f-%.2f' % (min(busy), max(busy)) if busy else '?'
        if a.svg:
            with open(a.svg, 'w') as f:
                f.write(svg(rows, n, a.machine, a.software, others))
            print('chart: %s' % a.svg)
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'machine': a.machine, 'software': a.software, 'shown': chosen, 'runs': runs,
                       'targets': [{'target': t, 'met': m} for t, m in checked]},
                      f, indent=1, ensure_ascii=False)
            f.write('\n')
        print('figures: %s' % a.json)
    sys.exit(0 if all(m for _, m in checked) else 1)


if __name__ == '__main__':
    main()

// Coverage dashboard: coverage rate (覆盖率), delivery rate (开课率), routine rate and class
// hours per region, teaching point, subject and over time, from GET /api/v1/coverage, as
// ECharts charts and a sortable table, with CSV download; the teaching points not served this
// week are listed and highlighted.
// Readers (admin key, roomList token) see every region; a supervisor account (巡课) signed in
// with its own credentials sees its region (the default) and the regions inside it only, as
// the server allows (classroom/auth.go coverageRegion).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { auth } from '../auth';
import { Icon } from '../components/icons';
import { Empty, TopBar } from '../components/ui';
import type { EChartsOption } from '../charts';
import { lang, t } from '../i18n';
import { COLUMNS, type ColumnId, type CoverageReport, formatRate, formatValue, rows, sortRows, subjectHours, supervisorRegions, timeSeries, totalHours, unservedPoints } from '../logic/coverage';
import { isoDay, mondayOf } from '../logic/sessions';
import { useSignal } from '../store';
import { errorMessage, toast } from '../toast';

const GROUPS = ['county', 'school', 'teaching_point', 'subject', 'city'] as const;
const TIME_DIMS = ['week', 'day', 'month'] as const;

function Chart({ option, testid }: { option: EChartsOption; testid: string }) {
  const el = useRef<HTMLDivElement>(null);
  const chart = useRef<{ setOption: (o: EChartsOption, notMerge?: boolean) => void; resize: () => void; dispose: () => void }>();
  useEffect(() => {
    let disposed = false;
    let ro: ResizeObserver | undefined;
    void import('../charts').then(({ echarts }) => {
      if (disposed || !el.current) return;
      chart.current = echarts.init(el.current, undefined, { renderer: 'canvas' });
      chart.current.setOption(option, true);
      ro = new ResizeObserver(() => chart.current?.resize());
      ro.observe(el.current);
    });
    return () => {
      disposed = true;
      ro?.disconnect();
      chart.current?.dispose();
      chart.current = undefined;
    };
  }, []);
  useEffect(() => {
    chart.current?.setOption(option, true);
  }, [option]);
  return <div class="chart" ref={el} data-testid={testid} />;
}

const palette = ['#0f766e', '#2563eb', '#d97706', '#7c3aed', '#dc2626', '#0891b2'];

function Kpi({ label, value, sub, testid }: { label: string; value: string; sub?: string; testid: string }) {
  return (
    <div class="kpi" data-testid={testid}>
      <div class="kpi-label">{label}</div>
      <div class="kpi-value">{value}</div>
      {sub ? <div class="kpi-sub">{sub}</div> : null}
    </div>
  );
}

export function Dashboard() {
  const a = useSignal(auth);
  useSignal(lang);
  const today = new Date();
  const [from, setFrom] = useState(isoDay(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 27)));
  const [to, setTo] = useState(isoDay(today));
  const [groupBy, setGroupBy] = useState<string>('county');
  const [timeDim, setTimeDim] = useState<string>('week');
  // A supervisor's own region bounds what it may choose (and is where it starts).
  const own = a?.kind === 'account' && a.account?.kind === 'supervisor' && a.account.region ? a.account.region : undefined;
  const [region, setRegion] = useState(own ?? '');
  const [regions, setRegions] = useState<{ code: string; name: string }[]>(own ? [{ code: own, name: own }] : []);
  const [rep, setRep] = useState<CoverageReport>();
  const [series, setSeries] = useState<CoverageReport>();
  const [week, setWeek] = useState<CoverageReport>();
  const [sort, setSort] = useState<{ col: ColumnId; dir: 'asc' | 'desc' }>({ col: 'coverage_rate', dir: 'asc' });
  const [error, setError] = useState('');

  const token = a?.token ?? '';
  const params = (extra: Record<string, string>) => {
    const p: Record<string, string> = { from, to, ...extra };
    if (region) p.region = region;
    return p;
  };

  useEffect(() => {
    if (!token) return;
    if (own) {
      api
        .me(token)
        .then((m) => setRegions(supervisorRegions(own, m.directory?.regions)))
        .catch(() => undefined);
      return;
    }
    api
      .dataset(token)
      .then((d) => setRegions(((d.regions ?? []) as { code: string; name: string }[]).sort((x, y) => x.code.localeCompare(y.code))))
      .catch(() => undefined);
  }, [token, own]);

  useEffect(() => {
    if (!token) return;
    setError('');
    const monday = isoDay(mondayOf(new Date()));
    Promise.all([
      api.coverage(token, params({ group_by: groupBy })),
      api.coverage(token, params({ group_by: timeDim })),
      api.coverage(token, { from: monday, to: isoDay(new Date()), group_by: 'teaching_point', ...(region ? { region } : {}) }),
    ])
      .then(([r, s, w]) => {
        setRep(r);
        setSeries(s);
        setWeek(w);
      })
      .catch((e: unknown) => setError(e instanceof ApiError && (e.status === 403 || e.status === 401) ? t('needReader') : errorMessage(e)));
  }, [token, from, to, groupBy, timeDim, region]);

  const download = async () => {
    try {
      const csv = await api.coverageCsv(token, params({ group_by: groupBy }));
      const blob = new Blob([csv], { type: 'text/csv;charset=utf-8' });
      const url = URL.createObjectURL(blob);
      const link = document.createElement('a');
      link.href = url;
      link.download = `coverage-${groupBy}-${from}-${to}.csv`;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 5000);
    } catch (e) {
      toast((e as Error).message, 'error');
    }
  };

  const unserved = week ? unservedPoints(week) : [];
  const unservedIds = new Set(unserved.map((u) => u.id));
  const tableRows = rep ? sortRows(rows(rep), sort.col, sort.dir) : [];
  const ts = series ? timeSeries(series, timeDim) : undefined;
  const total = rep?.total;

  // Tooltips are drawn on the canvas (richText): ECharts' HTML tooltips carry inline styles,
  // which the Content-Security-Policy (style-src 'self') refuses.
  const lineOption: EChartsOption | undefined = ts && {
    color: palette,
    tooltip: { trigger: 'axis', renderMode: 'richText', valueFormatter: (v: unknown) => (typeof v === 'number' ? `${v}%` : '—') },
    legend: { top: 0, data: [t('coverageRate'), t('deliveryRate')] },
    grid: { left: 48, right: 24, top: 36, bottom: 32 },
    xAxis: { type: 'category', data: ts.x, boundaryGap: false },
    yAxis: { type: 'value', min: 0, max: 100, axisLabel: { formatter: '{value}%' } },
    series: [
      { name: t('coverageRate'), type: 'line', smooth: true, symbolSize: 8, data: ts.coverage, areaStyle: { opacity: 0.08 } },
      { name: t('deliveryRate'), type: 'line', smooth: true, symbolSize: 8, data: ts.delivery },
    ],
  };
  const groupRows = rep ? rows(rep) : [];
  const barOption: EChartsOption | undefined = rep && {
    color: palette,
    tooltip: { trigger: 'axis', renderMode: 'richText' },
    legend: { top: 0, data: [t('coverageRate'), t('deliveryRate'), t('classHours')] },
    grid: { left: 48, right: 48, top: 36, bottom: 64 },
    xAxis: { type: 'category', data: groupRows.map((r) => r.name), axisLabel: { interval: 0, rotate: groupRows.length > 3 ? 30 : 0 } },
    yAxis: [
      { type: 'value', min: 0, max: 100, axisLabel: { formatter: '{value}%' } },
      { type: 'value', name: t('hours'), splitLine: { show: false } },
    ],
    series: [
      { name: t('coverageRate'), type: 'bar', data: groupRows.map((r) => (r.values.coverage_rate === null ? null : Math.round(r.values.coverage_rate * 10000) / 100)) },
      { name: t('deliveryRate'), type: 'bar', data: groupRows.map((r) => (r.values.delivery_rate === null ? null : Math.round(r.values.delivery_rate * 10000) / 100)) },
      { name: t('classHours'), type: 'line', yAxisIndex: 1, data: groupRows.map((r) => r.values.class_hours) },
    ],
  };
  const subj = total ? subjectHours(total) : [];
  const pieOption: EChartsOption | undefined = total && {
    color: palette,
    tooltip: { trigger: 'item', renderMode: 'richText', formatter: '{b}: {c} h ({d}%)' },
    legend: { bottom: 0 },
    series: [{ type: 'pie', radius: ['45%', '70%'], center: ['50%', '45%'], data: subj.map((s) => ({ name: s.subject, value: s.hours })), label: { formatter: '{b}\n{c} h' } }],
  };

  const th = (id: ColumnId, label: string, numeric: boolean) => (
    <th
      class={`${numeric ? 'num' : ''} sortable${sort.col === id ? ` sorted-${sort.dir}` : ''}`}
      data-col={id}
      onClick={() => setSort({ col: id, dir: sort.col === id && sort.dir === 'asc' ? 'desc' : 'asc' })}
      aria-sort={sort.col === id ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}
    >
      {label}
      <span class="sort-mark">{sort.col === id ? (sort.dir === 'asc' ? '▲' : '▼') : '↕'}</span>
    </th>
  );

  return (
    <div class="page dashboard-page" data-testid="dashboard">
      <TopBar back={a?.kind === 'admin' ? undefined : '/'} title={<strong>{t('dashboard')}</strong>} />
      <main class="content wide">
        <div class="filters-bar card">
          <label class="field inline">
            <span class="field-label">{t('region')}</span>
            <select data-testid="region" value={region} onChange={(e) => setRegion((e.target as HTMLSelectElement).value)}>
              {own ? null : <option value="">{t('all')}</option>}
              {regions.map((r) => (
                <option value={r.code}>
                  {r.name} ({r.code}){r.code === own ? ` · ${t('ownRegion')}` : ''}
                </option>
              ))}
            </select>
          </label>
          <label class="field inline">
            <span class="field-label">{t('from')}</span>
            <input type="date" data-testid="from" value={from} onChange={(e) => setFrom((e.target as HTMLInputElement).value)} />
          </label>
          <label class="field inline">
            <span class="field-label">{t('to')}</span>
            <input type="date" data-testid="to" value={to} onChange={(e) => setTo((e.target as HTMLInputElement).value)} />
          </label>
          <label class="field inline">
            <span class="field-label">{t('groupBy')}</span>
            <select data-testid="group-by" value={groupBy} onChange={(e) => setGroupBy((e.target as HTMLSelectElement).value)}>
              {GROUPS.map((g) => (
                <option value={g}>{t(`g_${g}` as 'g_county')}</option>
              ))}
            </select>
          </label>
          <label class="field inline">
            <span class="field-label">{t('overTime')}</span>
            <select value={timeDim} onChange={(e) => setTimeDim((e.target as HTMLSelectElement).value)}>
              {TIME_DIMS.map((g) => (
                <option value={g}>{t(`g_${g}` as 'g_week')}</option>
              ))}
            </select>
          </label>
          <span class="spacer" />
          <button class="secondary" data-testid="download-csv" onClick={() => void download()} disabled={!rep}>
            <Icon name="download" size={18} /> {t('downloadCsv')}
          </button>
        </div>
        {error ? <div class="error-text big-error">{error}</div> : null}
        {!rep && !error ? <Empty>{t('loading')}</Empty> : null}
        {total ? (
          <div class="kpis" data-testid="kpis">
            <Kpi testid="kpi-coverage" label={t('coverageRate')} value={formatRate(total.coverage_rate)} sub={`${total.covered_teaching_points}/${total.teaching_points} ${t('teachingPoints')}`} />
            <Kpi testid="kpi-delivery" label={t('deliveryRate')} value={formatRate(total.delivery_rate)} sub={`${total.valid}/${total.scheduled} ${t('validSessions')}`} />
            <Kpi testid="kpi-routine" label={t('routineRate')} value={formatRate(total.routine_rate)} sub={`${total.routine_teaching_points}/${total.teaching_points}`} />
            <Kpi testid="kpi-hours" label={t('classHours')} value={`${totalHours(total)} ${t('hours')}`} sub={subj.map((s) => `${s.subject} ${s.hours}`).join(' · ')} />
          </div>
        ) : null}
        {week ? (
          <section class={`card unserved${unserved.length ? ' alert' : ''}`} data-testid="unserved">
            <h3>
              <Icon name={unserved.length ? 'alert' : 'check'} size={20} /> {unserved.length ? `${t('unservedThisWeek')} (${unserved.length})` : t('allServed')}
            </h3>
            <div class="unserved-list">
              {unserved.map((u) => (
                <span class="chip chip-alert" data-testid={`unserved-${u.id}`}>
                  {u.name}
                </span>
              ))}
            </div>
          </section>
        ) : null}
        {rep ? (
          <div class="chart-grid">
            <section class="card">
              <h3>
                {t('overTime')} · {t(`g_${timeDim}` as 'g_week')}
              </h3>
              {lineOption ? <Chart option={lineOption} testid="chart-time" /> : null}
            </section>
            <section class="card">
              <h3>
                {t('byGroup')} · {t(`g_${groupBy}` as 'g_county')}
              </h3>
              {barOption ? <Chart option={barOption} testid="chart-groups" /> : null}
            </section>
            <section class="card">
              <h3>{t('bySubject')}</h3>
              {subj.length && pieOption ? <Chart option={pieOption} testid="chart-subjects" /> : <Empty>{t('noData')}</Empty>}
            </section>
          </div>
        ) : null}
        {rep ? (
          <section class="card table-card">
            <table class="table coverage-table" data-testid="coverage-table">
              <thead>
                <tr>{COLUMNS.map((c) => th(c.id, t(c.label), c.numeric))}</tr>
              </thead>
              <tbody>
                {tableRows.map((r) => (
                  <tr key={r.id} data-key={r.id} class={r.unserved || (groupBy === 'teaching_point' && unservedIds.has(r.id)) ? 'row-alert' : ''}>
                    {COLUMNS.map((c) =>
                      c.id === 'name' ? (
                        <td data-col="name">{r.name}</td>
                      ) : (
                        <td class="num" data-col={c.id} data-value={r.values[c.id] ?? ''}>
                          {formatValue(c.id, r.values[c.id])}
                        </td>
                      ),
                    )}
                  </tr>
                ))}
              </tbody>
              {total ? (
                <tfoot>
                  <tr data-key="total">
                    {COLUMNS.map((c) =>
                      c.id === 'name' ? (
                        <td data-col="name">{t('total')}</td>
                      ) : (
                        <td class="num" data-col={c.id} data-value={(c.id === 'class_hours' ? totalHours(total) : total[c.id]) ?? ''}>
                          {formatValue(c.id, c.id === 'class_hours' ? totalHours(total) : total[c.id])}
                        </td>
                      ),
                    )}
                  </tr>
                </tfoot>
              ) : null}
            </table>
          </section>
        ) : null}
      </main>
    </div>
  );
}

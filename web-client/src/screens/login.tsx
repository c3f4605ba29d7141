// Sign-in: a classroom or supervisor account (POST /api/v1/login), or an admin token for the
// statistics. In dev mode: a quick room by name and a button that creates today's demo classes.
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { deviceFor, rememberDevice, signIn } from '../auth';
import { Icon } from '../components/icons';
import { TopBar } from '../components/ui';
import { clientConfig } from '../config';
import { t } from '../i18n';
import { navigate } from '../router';
import { useSignal } from '../store';
import { errorMessage, toast } from '../toast';

function DevPanel() {
  const cfg = useSignal(clientConfig);
  const [room, setRoom] = useState('demo');
  const [name, setName] = useState('');
  const [demo, setDemo] = useState<{ id: string; password: string }[]>();
  if (!cfg?.dev) return null;
  return (
    <section class="card dev-panel" data-testid="dev-panel">
      <h3>
        <span class="chip chip-warn">{t('devMode')}</span> {t('quickRoom')}
      </h3>
      <form
        class="row gap"
        onSubmit={(e) => {
          e.preventDefault();
          if (room.trim()) navigate(`/room/${encodeURIComponent(room.trim())}${name.trim() ? `?name=${encodeURIComponent(name.trim())}` : ''}`);
        }}
      >
        <input value={room} onInput={(e) => setRoom((e.target as HTMLInputElement).value)} placeholder={t('roomName')} aria-label={t('roomName')} />
        <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} placeholder={t('yourName')} aria-label={t('yourName')} />
        <button class="secondary" type="submit">
          {t('join')}
        </button>
      </form>
      {cfg.classroom ? (
        <div class="stack">
          <button
            class="secondary"
            data-testid="create-demo"
            onClick={() =>
              void api
                .devDemo()
                .then((r) => {
                  setDemo(r.accounts);
                  toast(t('demoCreated'), 'ok');
                })
                .catch((e: unknown) => toast(errorMessage(e), 'error'))
            }
          >
            {t('createDemo')}
          </button>
          {demo ? (
            <table class="table small">
              <thead>
                <tr>
                  <th>{t('account')}</th>
                  <th>{t('password')}</th>
                </tr>
              </thead>
              <tbody>
                {demo.map((a) => (
                  <tr>
                    <td>
                      <code>{a.id}</code>
                    </td>
                    <td>
                      <code>{a.password}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </div>
      ) : (
        <p class="muted small">
          {t('classroomDisabled')}
          <br />
          <code>go run ./cmd/sanke serve --dev --config web-client/demo/sanke-demo.yaml</code>
        </p>
      )}
    </section>
  );
}

export function Login() {
  const [tab, setTab] = useState<'account' | 'admin'>('account');
  const [account, setAccount] = useState('');
  const [password, setPassword] = useState('');
  const [adminToken, setAdminToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      if (tab === 'account') {
        const id = account.trim();
        const r = await api.login(id, password, deviceFor(id));
        rememberDevice(id, r.device);
        signIn({ kind: 'account', token: r.token, account: r.account, expiresAt: r.expires_at });
        navigate('/', true);
      } else {
        await api.coverage(adminToken.trim(), {});
        signIn({ kind: 'admin', token: adminToken.trim() });
        navigate('/dashboard', true);
      }
    } catch (err) {
      const ae = err as ApiError;
      setError(ae.status === 401 && tab === 'account' ? t('wrongPassword') : ae.message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="page login-page">
      <TopBar />
      <main class="login-main">
        <section class="login-hero">
          <div class="hero-logo">课</div>
          <h1>{t('app')}</h1>
          <p class="hero-sub">{t('appLong')}</p>
          <ul class="hero-points">
            <li>
              <Icon name="cam" /> {t('delivery')}
            </li>
            <li>
              <Icon name="grid" /> {t('research')}
            </li>
            <li>
              <Icon name="screen" /> {t('broadcast')}
            </li>
          </ul>
        </section>
        <div class="login-side">
          <form class="card login-card" onSubmit={(e) => void submit(e)} data-testid="login-form">
            <div class="tabs" role="tablist">
              <button type="button" role="tab" class={tab === 'account' ? 'active' : ''} onClick={() => setTab('account')}>
                {t('signInAccount')}
              </button>
              <button type="button" role="tab" data-testid="tab-admin" class={tab === 'admin' ? 'active' : ''} onClick={() => setTab('admin')}>
                {t('signInAdmin')}
              </button>
            </div>
            {tab === 'account' ? (
              <>
                <label class="field">
                  <span class="field-label">{t('account')}</span>
                  <input name="account" autocomplete="username" value={account} placeholder={t('accountHint')} onInput={(e) => setAccount((e.target as HTMLInputElement).value)} required />
                </label>
                <label class="field">
                  <span class="field-label">{t('password')}</span>
                  <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required />
                </label>
              </>
            ) : (
              <label class="field">
                <span class="field-label">{t('adminToken')}</span>
                <input name="admin-token" type="password" value={adminToken} placeholder={t('adminTokenHint')} onInput={(e) => setAdminToken((e.target as HTMLInputElement).value)} required />
              </label>
            )}
            {error ? (
              <div class="error-text" data-testid="login-error">
                {error}
              </div>
            ) : null}
            <button class="primary big block" type="submit" disabled={busy}>
              {busy ? t('signingIn') : t('signIn')}
            </button>
          </form>
          <DevPanel />
        </div>
      </main>
    </div>
  );
}

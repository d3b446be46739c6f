package evbustest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evbus/evbus/internal/redact"
)

// PostgresURLEnv names the environment variable that points the
// PostgreSQL helpers at a server that is already running (a connection URL
// of a role allowed to create databases). Unset, they start a throwaway one.
const PostgresURLEnv = "EVBUS_TEST_POSTGRES_URL"

// PostgreSQL is a PostgreSQL server for tests: a throwaway cluster from
// the system's binaries (initdb into a temporary directory, a free
// loopback port, run as the postgres OS user when the caller is root,
// because PostgreSQL refuses to run as root), or the server PostgresURLEnv
// names.
type PostgreSQL struct {
	url  string // admin connection
	dir  string // the cluster's directory; empty for an external server
	cmd  *exec.Cmd
	exit chan error
	n    atomic.Int64
}

// StartPostgreSQL starts a throwaway PostgreSQL server, or connects to the
// one PostgresURLEnv names. Commits are durable (fsync on), so what tests
// and benchmarks measure is what a production server would do.
func StartPostgreSQL(ctx context.Context) (*PostgreSQL, error) {
	if u := os.Getenv(PostgresURLEnv); u != "" {
		s := &PostgreSQL{url: u}
		if err := s.ping(ctx); err != nil {
			return nil, fmt.Errorf("evbustest: %s=%s: %w", PostgresURLEnv, redact.URL(u), err)
		}
		return s, nil
	}
	bin, err := postgresBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "evbus-pg-")
	if err != nil {
		return nil, fmt.Errorf("evbustest: PostgreSQL directory: %w", err)
	}
	s := &PostgreSQL{dir: dir, exit: make(chan error, 1)}
	if err := s.start(ctx, bin); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *PostgreSQL) start(ctx context.Context, bin string) error {
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("evbustest: giving %s to the postgres user: %w", s.dir, err)
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", filepath.Join(s.dir, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("evbustest: initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return s.launch(ctx, bin, port)
}

// launch runs the server on the cluster in s.dir and waits until it answers.
// startWait bounds how long a start waits for the server to answer. After
// Stop, the server first replays the WAL of every test database since its
// last checkpoint, which took over 30 s on a loaded 2-core machine.
const startWait = 2 * time.Minute

func (s *PostgreSQL) launch(ctx context.Context, bin string, port int) error {
	cred, err := postgresCredential()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("evbustest: PostgreSQL log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", filepath.Join(s.dir, "data"),
		"-p", strconv.Itoa(port), "-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200", "-c", "shared_buffers=128MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C to the tests reaches it only
	// through Close; killed with the test process if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("evbustest: starting PostgreSQL: %w", err)
	}
	s.cmd = cmd
	go func() { s.exit <- cmd.Wait() }()
	deadline := time.Now().Add(startWait)
	for {
		err := s.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case werr := <-s.exit:
			s.exit <- werr
			return fmt.Errorf("evbustest: PostgreSQL exited at start (%v):\n%s", werr, s.logTail())
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("evbustest: PostgreSQL did not answer within %v: %w\n%s", startWait, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *PostgreSQL) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func (s *PostgreSQL) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// URL returns the server's administrative connection URL.
func (s *PostgreSQL) URL() string { return s.url }

// CreateDatabase creates an empty database and returns its connection URL.
func (s *PostgreSQL) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("evbus_%d_%d", os.Getpid(), s.n.Add(1))
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return "", fmt.Errorf("evbustest: connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("evbustest: creating database %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return "", err
	}
	u := strings.Replace(s.url, "/"+cfg.Database+"?", "/"+name+"?", 1)
	if u == s.url {
		u = strings.TrimSuffix(s.url, "/"+cfg.Database) + "/" + name
	}
	return u, nil
}

// Stop stops the server at once (SIGQUIT: no checkpoint), as a crash
// would; Restart starts it again on the same directory and port. Tests of
// "the database is down" use the pair. An external server cannot be
// stopped.
func (s *PostgreSQL) Stop() error {
	if s.cmd == nil {
		return errors.New("evbustest: an external PostgreSQL server cannot be stopped")
	}
	_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGQUIT)
	err := <-s.exit
	s.cmd = nil
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return err
	}
	return nil
}

// Restart starts a server stopped with Stop again, on the same port.
func (s *PostgreSQL) Restart(ctx context.Context) error {
	if s.dir == "" {
		return errors.New("evbustest: an external PostgreSQL server cannot be restarted")
	}
	if s.cmd != nil {
		return errors.New("evbustest: PostgreSQL is running")
	}
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return err
	}
	bin, err := postgresBinaries()
	if err != nil {
		return err
	}
	return s.launch(ctx, bin, int(cfg.Port))
}

// Close stops a throwaway server and removes its directory.
func (s *PostgreSQL) Close() error {
	var err error
	if s.cmd != nil {
		// SIGINT: fast shutdown, disconnecting the clients.
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-s.exit:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exit
			err = errors.New("evbustest: PostgreSQL did not stop within 20s; killed")
		}
		s.cmd = nil
	}
	if s.dir != "" {
		if rerr := os.RemoveAll(s.dir); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// postgresBinaries finds the directory of initdb and postgres: PATH, then
// pg_config, then Debian's /usr/lib/postgresql/<version>/bin (newest).
func postgresBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("evbustest: no PostgreSQL server binaries (initdb, postgres) found: install them (Debian: apt-get install postgresql) or set " + PostgresURLEnv)
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// postgresCredential returns the postgres OS user when running as root
// (PostgreSQL refuses to run as root), nil otherwise; looked up once.
var postgresCredential = sync.OnceValues(func() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("evbustest: running as root, and PostgreSQL refuses to: no postgres OS user to run it as (%w); create one or run the tests as another user", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
})

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("evbustest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var shared struct {
	sync.Mutex
	pg  *PostgreSQL
	err error
}

// RunWithPostgreSQL is for a package's TestMain: it starts a PostgreSQL
// server for the package's tests (StartPostgreSQL), runs them, stops the
// server and exits. PostgresDatabase gives each test its own database on
// it. A server that cannot start fails every test that asks for one; none
// is skipped.
//
//	func TestMain(m *testing.M) { evbustest.RunWithPostgreSQL(m) }
func RunWithPostgreSQL(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	pg, err := StartPostgreSQL(ctx)
	cancel()
	shared.Lock()
	shared.pg, shared.err = pg, err
	shared.Unlock()
	code := m.Run()
	if pg != nil {
		if err := pg.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// PostgresServer returns the server RunWithPostgreSQL started, failing t
// if there is none.
func PostgresServer(t testing.TB) *PostgreSQL {
	t.Helper()
	shared.Lock()
	pg, err := shared.pg, shared.err
	shared.Unlock()
	if err != nil {
		t.Fatalf("evbustest: no PostgreSQL: %v", err)
	}
	if pg == nil {
		t.Fatal("evbustest: no PostgreSQL server: call evbustest.RunWithPostgreSQL(m) from the package's TestMain")
	}
	return pg
}

// PostgresDatabase returns the connection URL of a new, empty database on
// the package's PostgreSQL server (see RunWithPostgreSQL).
func PostgresDatabase(t testing.TB) string {
	t.Helper()
	u, err := PostgresServer(t).CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

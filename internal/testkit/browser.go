package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ViewportWidth and ViewportHeight are the size of every tab's page (and
// of its screenshots): a laptop screen, the size pages must read well at.
const (
	ViewportWidth  = 1280
	ViewportHeight = 800
)

// chromiumNames are the names Debian and other distributions give the
// browser's command.
var chromiumNames = []string{"chromium", "chromium-browser"}

// FindChromium returns the path of the Chromium command on PATH, or an
// error saying how to install it.
func FindChromium() (string, error) {
	for _, name := range chromiumNames {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no Chromium on PATH (looked for %s): the browser tests need it; "+
		"`make test` installs it (Debian: apt-get install chromium)", strings.Join(chromiumNames, ", "))
}

// browser is the one headless Chromium of a test binary, started by the
// first NewTab and stopped by RunWithBrowser. Its mutex guards every field.
var browser struct {
	mu      sync.Mutex
	started bool
	ctx     context.Context // the browser's first tab: the parent of every Tab
	stop    func()          // ends the browser and removes its user data directory
	err     error           // why it did not start, for every later NewTab
}

// startBrowser starts the binary's Chromium once; a failed start is kept
// and reported to every caller.
func startBrowser() (context.Context, error) {
	browser.mu.Lock()
	defer browser.mu.Unlock()
	if browser.started {
		return browser.ctx, browser.err
	}
	browser.started = true
	path, err := FindChromium()
	if err != nil {
		browser.err = err
		return nil, err
	}
	dir, err := os.MkdirTemp("", "evbus-chromium-")
	if err != nil {
		browser.err = fmt.Errorf("a user data directory for Chromium: %w", err)
		return nil, browser.err
	}
	out := new(Buffer) // what Chromium prints, for the error of a failed start
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // as root (CI, containers) Chromium refuses to start with its sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		// A page restored from the back-forward cache fires no load event
		// and loses the DevTools execution context chromedp holds, so
		// NavigateBack would wait for ever; without the cache, back loads
		// the page again, which is what a test of the back button checks.
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,BackForwardCache"),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(dir)
	}
	if err := chromedp.Do(ctx); err != nil {
		stop()
		browser.err = fmt.Errorf("starting %s: %w; it printed:\n%s", path, err, out.String())
		return nil, browser.err
	}
	browser.ctx, browser.stop = ctx, stop
	return ctx, nil
}

// RunWithBrowser is for a package's TestMain: it runs the tests, which
// share one headless Chromium (started by the first NewTab, a new tab and
// browser context per test, so the start is paid once), then stops it,
// removes its fresh user data directory and exits.
//
//	func TestMain(m *testing.M) { testkit.RunWithBrowser(m) }
func RunWithBrowser(m *testing.M) {
	code := m.Run()
	browser.mu.Lock()
	if browser.stop != nil {
		browser.stop()
	}
	browser.mu.Unlock()
	os.Exit(code)
}

// Tab is a tab of the test binary's headless Chromium, in a browser
// context of its own: its cookies and storage are its own, so a sign-in
// in one test never leaks into another. It records the page's uncaught
// exceptions and console errors (a script that throws, a resource the
// Content-Security-Policy blocks) and fails its test with them when the
// test ends.
type Tab struct {
	tb  testing.TB
	ctx context.Context

	mu       sync.Mutex // guards problems, which the tab's reading goroutine appends to
	problems []string
}

// NewTab opens a tab, starting Chromium at the first call of the binary;
// the tab closes when tb ends. Without Chromium it fails tb saying how to
// install it: a browser test never skips.
func NewTab(tb testing.TB) *Tab {
	tb.Helper()
	parent, err := startBrowser()
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	t := &Tab{tb: tb, ctx: ctx}
	// Listen sees each event before the answer to a command that follows
	// it, so a problem is recorded before the test's next action returns.
	if err := chromedp.Listen(ctx, t.record); err != nil {
		cancel()
		tb.Fatalf("opening a tab: %v", err)
	}
	// The window's size leaves the page what the browser's frame does not
	// take; the page itself gets the laptop's size exactly.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(ViewportWidth, ViewportHeight)); err != nil {
		cancel()
		tb.Fatalf("sizing a tab: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		t.mu.Lock()
		defer t.mu.Unlock()
		if len(t.problems) > 0 {
			tb.Errorf("the page reported problems:\n%s", strings.Join(t.problems, "\n"))
		}
	})
	return t
}

// record keeps the events that show a broken page: an uncaught exception,
// console.error, a resource the Content-Security-Policy blocked. Network
// errors (a 401 or 403 the test asked for) are the server's answers,
// which the tests check themselves.
func (t *Tab) record(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		p = "exception: " + d.Text
		if d.Exception != nil {
			p += " " + d.Exception.Description
		}
		p += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		args := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if a.Value != nil {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		p = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError || e.Source == log.EntrySourceNetwork {
			return
		}
		p = fmt.Sprintf("%s error: %s (%s)", e.Source, e.Text, e.URL)
	default:
		return
	}
	t.mu.Lock()
	t.problems = append(t.problems, p)
	t.mu.Unlock()
}

// Context is the tab's chromedp context, for actions Do and Run do not
// cover; it ends when the test does.
func (t *Tab) Context() context.Context { return t.ctx }

// Do runs steps in the tab, each call bounded by Guard, failing the test
// on an error.
func (t *Tab) Do(steps ...chromedp.Action[chromedp.Void]) {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, Guard)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.tb.Fatalf("in the browser: %v", describe(err, ctx))
	}
}

// Load runs steps that start a navigation (a click on a link, a form's
// submit, a key the page's script turns into one), waits for the new page
// to load and returns its HTTP status, that of the last response when
// the server redirected. Bounded by Guard; an error fails the test.
func (t *Tab) Load(steps ...chromedp.Action[chromedp.Void]) int64 {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, Guard)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.tb.Fatalf("in the browser, waiting for a page: %v", describe(err, ctx))
	}
	return resp.Status
}

// Run runs a in tab and returns its value, bounded by Guard, failing the
// test on an error.
func Run[T any](t *Tab, a chromedp.Action[T]) T {
	t.tb.Helper()
	ctx, cancel := context.WithTimeout(t.ctx, Guard)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.tb.Fatalf("in the browser: %v", describe(err, ctx))
	}
	return v
}

// describe names a wait that ran out as such.
func describe(err error, ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (waited %v)", err, Guard)
	}
	return err
}

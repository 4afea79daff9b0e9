package router

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"gateway/config"
	"gateway/internal/testheap"
)

// genConfig builds a config of n routes in services of up to 100 routes,
// the services rotating over the three host tiers (exact hosts and wildcard
// hosts shared by groups of services, so that trees are large too), each
// service's routes rotating over exact, parameter, prefix and ":param"
// patterns.
func genConfig(n int) *config.Config {
	per := 100
	if n < 300 {
		per = (n + 2) / 3 // 10 routes: 4 + 4 + 2
	}
	cfg := &config.Config{}
	for i, count := 0, 0; count < n; i++ {
		s := config.Service{
			ID:              fmt.Sprintf("s%d", i),
			PathPrefix:      fmt.Sprintf("/svc%d", i),
			StripPathPrefix: true,
		}
		switch i % 3 {
		case tierExact:
			s.Hosts = []string{fmt.Sprintf("api%d.example.com", i%7)}
		case tierWild:
			s.Hosts = []string{fmt.Sprintf("*.w%d.example.com", i%7)}
		}
		for j := 0; j < per && count < n; j, count = j+1, count+1 {
			r := config.Route{ID: fmt.Sprintf("s%d.%d", i, j)}
			switch j % 4 {
			case 0:
				r.Paths = []string{fmt.Sprintf("/items%d", j)}
			case 1:
				r.Paths = []string{fmt.Sprintf("/items%d/{id}/detail", j)}
			case 2:
				r.Paths = []string{fmt.Sprintf("/files%d/*", j)}
			case 3:
				r.Paths = []string{fmt.Sprintf("/orders%d/:id", j)}
				r.Methods = []string{"GET", "POST"}
			}
			s.Routes = append(s.Routes, r)
		}
		cfg.Services = append(cfg.Services, s)
	}
	return cfg
}

// Host tiers of genConfig's services, by service index % 3. The wildcard
// tier comes last so that at 10 routes the short service is a wildcard
// one, whose requests need only two routes.
const (
	tierExact = 0
	tierAny   = 1
	tierWild  = 2
)

type genCase struct {
	name, method, host, path, want string
}

// genRequests returns requests for the middle service of each host tier of
// a genConfig config, and what they match.
func genRequests(cfg *config.Config) []genCase {
	mid := func(tier int) int {
		i := len(cfg.Services) / 2
		i -= i % 3
		return min(i+tier, len(cfg.Services)-1)
	}
	ie, iw, in := mid(tierExact), mid(tierWild), mid(tierAny)
	eh := fmt.Sprintf("api%d.example.com", ie%7)
	wh := fmt.Sprintf("x.y.w%d.example.com", iw%7)
	id := func(i, j int) string { return fmt.Sprintf("s%d.%d", i, j) }
	return []genCase{
		{"exact", "GET", eh, fmt.Sprintf("/svc%d/items0", ie), id(ie, 0)},
		{"param", "GET", eh, fmt.Sprintf("/svc%d/items1/12345/detail", ie), id(ie, 1)},
		{"prefix", "GET", eh, fmt.Sprintf("/svc%d/files2/css/site/main.css", ie), id(ie, 2)},
		{"colon", "POST", eh, fmt.Sprintf("/svc%d/orders3/77", ie), id(ie, 3)},
		{"wildcard-host", "GET", wh, fmt.Sprintf("/svc%d/items0", iw), id(iw, 0)},
		{"wildcard-host-param", "GET", wh, fmt.Sprintf("/svc%d/items1/9/detail", iw), id(iw, 1)},
		{"no-host", "GET", "unknown.example.org", fmt.Sprintf("/svc%d/items1/9/detail", in), id(in, 1)},
		// The exact host tier has nothing for this path: falls through
		// both others.
		{"fallback", "GET", eh, fmt.Sprintf("/svc%d/files2/x", in), id(in, 2)},
		{"404", "GET", eh, fmt.Sprintf("/svc%d/nothing/here", ie), "404"},
		{"405", "PUT", eh, fmt.Sprintf("/svc%d/orders3/77", ie), "405"},
	}
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		cfg := genConfig(n)
		r, err := Compile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range genRequests(cfg) {
			switch c.name {
			case "colon", "wildcard-host-param", "404", "405":
				if n != 100000 {
					continue // the four shapes at every size; the rest at 100k
				}
			}
			rq := req(c.method, c.host, c.path, nil)
			b.Run(fmt.Sprintf("routes=%d/%s", n, c.name), func(b *testing.B) {
				m := &Match{}
				r.Match(rq, m)
				if got := routeID(m); got != c.want {
					b.Fatalf("%s%s: got %s, want %s", c.host, c.path, got, c.want)
				}
				b.ReportAllocs()
				cpu := threadCPU(b)
				for b.Loop() {
					r.Match(rq, m)
				}
				cpu.report(b)
			})
		}
	}
}

// cpuClock measures the CPU time of the benchmark's thread. On a shared
// machine (performance.md: numbers drift from run to run) wall time per op
// also counts the time the thread waited for a CPU; cpu-ns/op does not.
type cpuClock struct{ start time.Duration }

// threadCPU locks the benchmark goroutine to its thread, for the rest of
// the benchmark function, and starts the clock.
func threadCPU(b *testing.B) cpuClock {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	return cpuClock{threadTime()}
}

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(threadTime()-c.start)/float64(b.N), "cpu-ns/op")
}

func threadTime() time.Duration { return rusage(1 /* RUSAGE_THREAD */) }

func processTime() time.Duration { return rusage(syscall.RUSAGE_SELF) }

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMatchVars is a match that tests a regex, an ipmatch and a
// numeric condition.
func BenchmarkMatchVars(b *testing.B) {
	r, reqs := allocCases(b)
	for _, c := range []struct {
		name string
		i    int
	}{{"regex", 2}, {"ipmatch", 4}, {"numeric-has", 6}} {
		rq := reqs[c.i]
		b.Run(c.name, func(b *testing.B) {
			m := &Match{}
			b.ReportAllocs()
			cpu := threadCPU(b)
			for b.Loop() {
				r.Match(rq, m)
			}
			cpu.report(b)
		})
	}
}

// BenchmarkCompile compiles 100,000 routes and reports the heap the router
// retains (retained-MiB) and what compiling allocated in all (alloc-MiB).
func BenchmarkCompile(b *testing.B) {
	cfg := genConfig(100000)
	var r *Router
	var retained, allocated float64
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		r = nil
		before := testheap.Live()
		start := processTime()
		b.StartTimer()
		var err error
		r, err = Compile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += processTime() - start
		after := testheap.Live()
		retained = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
		allocated = float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20)
		b.StartTimer()
	}
	runtime.KeepAlive(r)
	b.ReportMetric(retained, "retained-MiB")
	b.ReportMetric(allocated, "alloc-MiB")
	// CPU of the whole process, the garbage collector's included.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// BenchmarkCompile10k compiles the 10,000 routes of a reload (issue 20):
// the router is built whole at every reload.
func BenchmarkCompile10k(b *testing.B) {
	cfg := genConfig(10000)
	b.ReportAllocs()
	start := processTime()
	for b.Loop() {
		if _, err := Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
	// CPU of the whole process, the garbage collector's included.
	b.ReportMetric(float64(processTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

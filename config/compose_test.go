package config

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Placeholder secrets for reading the compose files: long enough for the
// admin-token rule, never used to start anything.
var composeSecrets = map[string]string{
	"TOPK_TOKEN_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	"TOPK_ADMIN_TOKEN": "compose-check-admin-token",
}

// composeConfig runs Debian's docker-compose (no engine needed) on file
// with exactly env as its environment (plus PATH), no .env file and every
// profile's services, and returns what it printed and whether it failed.
func composeConfig(t *testing.T, file string, env map[string]string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatal("docker-compose not installed (apt-get install docker-compose; .ci/run installs it)")
	}
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--env-file", empty, "--profile", "tools", "-f", file, "config")
	cmd.Dir = ".."
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// composeFile is the part of `docker-compose config`'s output the tests
// read (the file with anchors merged and variables interpolated).
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string             `yaml:"image"`
	Build       any                `yaml:"build"`
	User        string             `yaml:"user"`
	Restart     string             `yaml:"restart"`
	Command     []string           `yaml:"command"`
	Environment map[string]*string `yaml:"environment"`
	Volumes     []composeMount     `yaml:"volumes"`
	Profiles    []string           `yaml:"profiles"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func (s composeService) env(name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// composeMount is a volume entry, in the short syntax docker-compose 1.x
// prints (source:target[:mode]) or the long one Compose v2 prints.
type composeMount struct {
	Type, Source, Target string
}

func (m *composeMount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		parts := strings.Split(n.Value, ":")
		switch len(parts) {
		case 1:
			m.Target = parts[0]
		default:
			m.Source, m.Target = parts[0], parts[1]
		}
		m.Type = "volume"
		if m.Source == "" {
			m.Type = "anonymous"
		} else if strings.ContainsAny(m.Source[:1], "/.~") {
			m.Type = "bind"
		}
		return nil
	}
	var long struct{ Type, Source, Target string }
	if err := n.Decode(&long); err != nil {
		return err
	}
	*m = composeMount(long)
	return nil
}

// loadCompose reads file as compose resolves it, with the placeholder
// secrets and a hostile host environment: variables a compose file must
// not pass through (TOPK_DEV_MODE=1) are set, so a file that inherits them
// fails the checks.
func loadCompose(t *testing.T, file string) composeFile {
	t.Helper()
	env := map[string]string{"TOPK_DEV_MODE": "1", "TOPK_RUNTIME_DIR": "/tmp/topk-compose-check"}
	for k, v := range composeSecrets {
		env[k] = v
	}
	out, err := composeConfig(t, file, env)
	if err != nil {
		t.Fatalf("docker-compose -f %s config: %v\n%s", file, err, out)
	}
	var f composeFile
	if err := yaml.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(f.Services) == 0 {
		t.Fatalf("%s: no services", file)
	}
	return f
}

// imageRepo is an image reference without its tag.
func imageRepo(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i]
	}
	return image
}

// The image docker-compose.yml builds from our Dockerfile.
const topkImage = "topk"

// oneShotCommands are the topk commands that do their job and exit.
var oneShotCommands = []string{"topics", "migrate", "enqueue", "seed", "rekey", "ping", "config"}

// dataDirs is, per image, the data directory it creates and the non-root
// user that owns it in the image (so a new named volume mounted there
// starts owned by that user). From the images' Dockerfiles:
// apache/kafka (apache/kafka docker/jvm/Dockerfile: adduser appuser; chown
// appuser:root -R /var/lib/kafka; USER appuser), cassandra
// (docker-library: chown -R cassandra:cassandra /var/lib/cassandra, and
// its entrypoint allows --user), redis (docker-library: chown redis:redis
// /data), postgres (docker-library: PGDATA /var/lib/postgresql/data owned
// by postgres; --user postgres supported), and ours (checked against the
// Dockerfile by TestDockerfileRunsAsNonRoot).
var dataDirs = map[string]struct{ user, dir string }{
	"apache/kafka": {"appuser", "/var/lib/kafka/data"},
	"cassandra":    {"cassandra", "/var/lib/cassandra"},
	"redis":        {"redis", "/data"},
	"postgres":     {"postgres", "/var/lib/postgresql/data"},
	topkImage:      {topkUser, topkDataDir},
}

const (
	topkUser    = "65532:65532"
	topkDataDir = "/var/lib/topk"
)

// Rules for every compose file (docker-compose.yml and
// docker-compose.cluster.yml), read as compose resolves them:
//   - every service names a non-root user (`user:`, neither root nor uid
//     0): the rule is that the file says it, not that an image happens to
//     default to it; our own image's USER is checked beside it;
//   - a one-shot job (a topk command that exits: topics, migrate, enqueue…)
//     has restart "no"; every other service restart "unless-stopped";
//     whatever others wait for with service_completed_successfully is a
//     one-shot;
//   - every data folder is a named volume (no bind mounts, no anonymous
//     volumes), declared in the file, mounted at the directory its image
//     creates for exactly the user the service runs as (dataDirs); so
//     Docker creates it with that owner;
//   - every server (Kafka, Cassandra, Redis, PostgreSQL) keeps its data in
//     such a volume, Kafka's KAFKA_LOG_DIRS in it.
func TestComposeServicesRunSafely(t *testing.T) {
	for _, file := range []string{"docker-compose.yml", "docker-compose.cluster.yml"} {
		t.Run(file, func(t *testing.T) {
			f := loadCompose(t, file)
			completed := map[string]bool{}
			for _, s := range f.Services {
				for dep, d := range s.DependsOn {
					if d.Condition == "service_completed_successfully" {
						completed[dep] = true
					}
				}
			}
			for name, s := range f.Services {
				repo := imageRepo(s.Image)
				if s.Build != nil && repo != topkImage {
					t.Errorf("%s: builds an image named %q; the checks know our Dockerfile's image as %q", name, s.Image, topkImage)
				}
				user, _, _ := strings.Cut(s.User, ":")
				if user == "" || user == "root" || user == "0" {
					t.Errorf("%s: user %q; every service names a non-root user", name, s.User)
				}
				oneShot := repo == topkImage && len(s.Command) > 0 && slices.Contains(oneShotCommands, s.Command[0])
				switch {
				case oneShot && s.Restart != "no":
					t.Errorf("%s: one-shot %v has restart %q, want \"no\"", name, s.Command, s.Restart)
				case !oneShot && s.Restart != "unless-stopped":
					t.Errorf("%s: long-running service has restart %q, want unless-stopped", name, s.Restart)
				}
				if completed[name] && !oneShot {
					t.Errorf("%s: others wait for it to complete, but it is not a one-shot command (%v)", name, s.Command)
				}
				want, known := dataDirs[repo]
				mounted := false
				for _, m := range s.Volumes {
					switch {
					case m.Type != "volume":
						t.Errorf("%s: %s mount %s:%s; data folders are named volumes (a missing host folder is created by Docker as root)", name, m.Type, m.Source, m.Target)
					case f.Volumes == nil || !hasKey(f.Volumes, m.Source):
						t.Errorf("%s: volume %q is not declared under volumes:", name, m.Source)
					case !known:
						t.Errorf("%s: mounts %s at %s, but the test does not know which directory image %s gives its user (add it to dataDirs)", name, m.Source, m.Target, s.Image)
					case m.Target != want.dir:
						t.Errorf("%s: mounts %s at %s; image %s's data folder owned by %s is %s", name, m.Source, m.Target, repo, want.user, want.dir)
					case s.User != want.user:
						t.Errorf("%s: runs as %q, but %s in image %s belongs to %s", name, s.User, m.Target, repo, want.user)
					default:
						mounted = true
					}
				}
				if known && repo != topkImage && !mounted {
					t.Errorf("%s: server %s keeps no data in a named volume at %s", name, repo, want.dir)
				}
				if dirs := s.env("KAFKA_LOG_DIRS"); repo == "apache/kafka" && dirs != want.dir {
					t.Errorf("%s: KAFKA_LOG_DIRS %q, want the volume's %s", name, dirs, want.dir)
				}
			}
		})
	}
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// Rules of docker-compose.yml's topk services: production-shaped whatever
// the host's environment says.
//   - each service's environment is a valid configuration for package
//     config (Load, with its admin-token rule) and has development mode
//     off, although the host sets TOPK_DEV_MODE=1;
//   - the secrets reach only the services that use them: TOPK_TOKEN_KEY
//     those whose command opens provider tokens, TOPK_ADMIN_TOKEN the api;
//   - the aggregator keeps its state in the volume (TOPK_RUNTIME_DIR), the
//     api its history uploads (TOPK_IMPORT_DIR);
//   - enqueue-test exists: a one-shot (restart "no") `topk enqueue` of a
//     simulated user, in a profile so `docker compose up` leaves it out.
func TestComposeProductionDefaults(t *testing.T) {
	f := loadCompose(t, "docker-compose.yml")
	tokenKeyCommands := []string{"api", "crawler", "scheduler", "enqueue", "seed", "rekey", "all"}
	for name, s := range f.Services {
		if imageRepo(s.Image) != topkImage {
			if _, ok := s.Environment["TOPK_TOKEN_KEY"]; ok {
				t.Errorf("%s: a server gets TOPK_TOKEN_KEY", name)
			}
			continue
		}
		c, err := Load(func(k string) string { return s.env(k) })
		if err != nil {
			t.Errorf("%s: its environment is not a valid configuration: %v", name, err)
		}
		if c.Crawler.DevMode {
			t.Errorf("%s: development mode is on (TOPK_DEV_MODE=%q)", name, s.env("TOPK_DEV_MODE"))
		}
		cmd := s.Command[0]
		if has, want := s.env("TOPK_TOKEN_KEY") != "", slices.Contains(tokenKeyCommands, cmd); has != want {
			t.Errorf("%s (topk %s): has TOPK_TOKEN_KEY %v, want %v", name, cmd, has, want)
		}
		if has, want := s.env("TOPK_ADMIN_TOKEN") != "", cmd == "api" || cmd == "all"; has != want {
			t.Errorf("%s (topk %s): has TOPK_ADMIN_TOKEN %v, want %v", name, cmd, has, want)
		}
		if cmd == "aggregator" && (len(s.Volumes) != 1 || c.RuntimeDir != topkDataDir || !strings.HasPrefix(c.Pipeline.StateDir, topkDataDir+"/")) {
			t.Errorf("aggregator: state in %s, runtime dir %s, volumes %v; want its state in the volume at %s", c.Pipeline.StateDir, c.RuntimeDir, s.Volumes, topkDataDir)
		}
		if cmd == "api" && (len(s.Volumes) != 1 || s.Volumes[0].Target != topkDataDir || !strings.HasPrefix(c.API.ImportDir, topkDataDir+"/")) {
			t.Errorf("api: uploads in %s, volumes %v; want them in a volume at %s", c.API.ImportDir, s.Volumes, topkDataDir)
		}
	}
	for _, cmd := range []string{"api", "crawler", "scheduler", "aggregator"} {
		found := false
		for _, s := range f.Services {
			found = found || (imageRepo(s.Image) == topkImage && s.Command[0] == cmd)
		}
		if !found {
			t.Errorf("no service runs topk %s", cmd)
		}
	}
	e, ok := f.Services["enqueue-test"]
	switch {
	case !ok:
		t.Fatal("no enqueue-test service (the seed's `docker compose run --rm enqueue-test`)")
	case e.Restart != "no" || len(e.Profiles) == 0:
		t.Errorf("enqueue-test: restart %q, profiles %v; want a one-shot outside `up` (restart \"no\", a profile)", e.Restart, e.Profiles)
	case strings.Join(e.Command, " ") != "enqueue --user alice --provider simulated":
		t.Errorf("enqueue-test runs %v", e.Command)
	}
	for _, dep := range []string{"migrate", "redis"} {
		if _, ok := e.DependsOn[dep]; !ok {
			t.Errorf("enqueue-test does not wait for %s", dep)
		}
	}
}

// TOPK_TOKEN_KEY and TOPK_ADMIN_TOKEN are required: written as
// ${NAME:?message} wherever the file sets them, and without either compose
// refuses the file with a message naming the variable and the one-liner
// that makes it (checked by running docker-compose without it, and with it
// empty).
func TestComposeRequiresSecrets(t *testing.T) {
	raw := repoFile(t, "docker-compose.yml")
	for name, oneLiner := range map[string]string{
		"TOPK_TOKEN_KEY":   "openssl rand -base64 32",
		"TOPK_ADMIN_TOKEN": GenerateAdminToken,
	} {
		uses := regexp.MustCompile(`\$\{`+name+`\b[^}]*\}`).FindAllString(raw, -1)
		if len(uses) == 0 {
			t.Errorf("docker-compose.yml never sets %s", name)
		}
		for _, u := range uses {
			if !strings.HasPrefix(u, "${"+name+":?") || !strings.Contains(u, oneLiner) {
				t.Errorf("docker-compose.yml: %s; want ${%s:?message with `%s`}", u, name, oneLiner)
			}
		}
		for _, val := range []string{"unset", ""} {
			env := map[string]string{}
			for k, v := range composeSecrets {
				if k != name || val == "" {
					env[k] = v
				}
			}
			if val == "" {
				env[name] = ""
			}
			out, err := composeConfig(t, "docker-compose.yml", env)
			if err == nil {
				t.Errorf("%s %s: docker-compose accepted the file", name, val)
				continue
			}
			// docker-compose 1.x prints the service's environment before
			// the message; the message is what follows the service name.
			_, msg, _ := strings.Cut(out, `in service "`)
			if !strings.Contains(msg, name) || !strings.Contains(msg, oneLiner) {
				t.Errorf("%s %s: the message does not name it and `%s`:\n%s", name, val, oneLiner, out)
			}
		}
	}
}

// Our image runs as the nonroot user the compose file names, and gives it
// the runtime directory the aggregator's volume mounts.
func TestDockerfileRunsAsNonRoot(t *testing.T) {
	lines := strings.Split(repoFile(t, "Dockerfile"), "\n")
	last := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	var user string
	chowned := false
	for _, l := range lines[last:] {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "USER":
			user = f[1]
		case len(f) > 2 && f[0] == "COPY" && slices.Contains(f, "--chown="+topkUser) && f[len(f)-1] == topkDataDir:
			chowned = true
		}
	}
	if user != topkUser {
		t.Errorf("Dockerfile's final stage runs as USER %q, want %s (distroless nonroot)", user, topkUser)
	}
	if !chowned {
		t.Errorf("Dockerfile's final stage does not create %s owned by %s (COPY --chown=%s … %s)", topkDataDir, topkUser, topkUser, topkDataDir)
	}
}

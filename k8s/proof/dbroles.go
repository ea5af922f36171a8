package proof

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// DatabaseClients are the services that talk to PostgreSQL, each as its own
// login role (migration 00004's groups), with the role's default name in
// bin/migrate and the environment variables the migrate Job sets it from.
var DatabaseClients = []struct {
	Service, DefaultRole, RoleEnv, PasswordEnv string
}{
	{"catalog", "catalog_svc", "CATALOG_DB_ROLE", "CATALOG_DB_PASSWORD"},
	{"pricing", "pricing_svc", "PRICING_DB_ROLE", "PRICING_DB_PASSWORD"},
}

// CheckDatabaseRoles checks least privilege for the database: catalog and
// pricing read DATABASE_URL from a Secret of their own, never the Secret the
// owner's credentials live in (the one PostgreSQL's POSTGRES_PASSWORD and the
// migrate Job's DATABASE_URL come from), and log in as a role that is not the
// owner; the migrate Job runs "up roles" (or "roles") and ensures exactly the
// role and password each service's DATABASE_URL names, on the same host and
// database it migrates.
func CheckDatabaseRoles(o *Objects) []error {
	var errs []error
	owner := map[string]bool{} // Secrets holding the owner's credentials
	var ownerUser string
	pg := findWorkload(o, "StatefulSet", "postgres")
	if pg == nil {
		return []error{fmt.Errorf("no StatefulSet postgres")}
	}
	for _, e := range pg.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && (e.Name == "POSTGRES_PASSWORD" || e.Name == "POSTGRES_USER") {
			owner[e.ValueFrom.SecretKeyRef.Name] = true
		}
	}
	if v, err := envValue(o, pg, "POSTGRES_USER"); err == nil {
		ownerUser = v
	} else {
		errs = append(errs, fmt.Errorf("%s: %w", pg, err))
	}

	job := findWorkload(o, "Job", "migrate")
	if job == nil {
		return append(errs, fmt.Errorf("no Job migrate"))
	}
	jobURL, err := envURL(o, job, "DATABASE_URL")
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w", job, err))
	}
	for _, e := range job.Template.Spec.Containers[0].Env {
		if e.Name == "DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			owner[e.ValueFrom.SecretKeyRef.Name] = true
		}
	}
	if !ensuresRoles(job.Template.Spec.Containers[0]) {
		errs = append(errs, fmt.Errorf("%s: args %q do not ensure the login roles; want \"up\", \"roles\"", job, job.Template.Spec.Containers[0].Args))
	}

	for _, c := range DatabaseClients {
		w := findWorkload(o, "Deployment", c.Service)
		if w == nil {
			errs = append(errs, fmt.Errorf("no Deployment %s", c.Service))
			continue
		}
		var ref *corev1.SecretKeySelector
		for _, e := range w.Template.Spec.Containers[0].Env {
			if e.Name == "DATABASE_URL" && e.ValueFrom != nil {
				ref = e.ValueFrom.SecretKeyRef
			}
		}
		if ref == nil {
			errs = append(errs, fmt.Errorf("%s: DATABASE_URL is not read from a Secret", w))
			continue
		}
		if owner[ref.Name] {
			errs = append(errs, fmt.Errorf("%s: DATABASE_URL comes from Secret %s, which holds the owner's credentials; use the service's own Secret", w, ref.Name))
		}
		u, err := envURL(o, w, "DATABASE_URL")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
			continue
		}
		user := u.User.Username()
		password, _ := u.User.Password()
		if user == "" || user == ownerUser || user == jobURL.User.Username() {
			errs = append(errs, fmt.Errorf("%s: DATABASE_URL logs in as %q, the database owner; want its own login role", w, user))
			continue
		}
		if u.Host != jobURL.Host || u.Path != jobURL.Path {
			errs = append(errs, fmt.Errorf("%s: DATABASE_URL names %s%s, but the migrate Job ensures the roles in %s%s", w, u.Host, u.Path, jobURL.Host, jobURL.Path))
		}
		role := c.DefaultRole
		if v, err := envValue(o, job, c.RoleEnv); err == nil && v != "" {
			role = v
		}
		if role != user {
			errs = append(errs, fmt.Errorf("%s: logs in as %q, but the migrate Job ensures role %q (%s)", w, user, role, c.RoleEnv))
		}
		jobPassword, err := envValue(o, job, c.PasswordEnv)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %s: %w; the Job does not ensure %s's role", job, c.PasswordEnv, err, c.Service))
		case jobPassword != password:
			errs = append(errs, fmt.Errorf("%s: the password in DATABASE_URL differs from the one the migrate Job sets (%s)", w, c.PasswordEnv))
		}
	}
	return errs
}

// ensuresRoles reports whether bin/migrate's args run "roles", alone or after "up".
func ensuresRoles(c corev1.Container) bool {
	var cmds []string
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if !strings.HasPrefix(a, "-") {
			cmds = append(cmds, a)
		}
	}
	return slices.Equal(cmds, []string{"up", "roles"}) || slices.Equal(cmds, []string{"roles"})
}

// envValue resolves a variable of w's first container, literal or from a Secret.
func envValue(o *Objects, w *Workload, name string) (string, error) {
	for _, e := range w.Template.Spec.Containers[0].Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom != nil {
			return secretValue(o, w.Namespace, e.ValueFrom)
		}
		return e.Value, nil
	}
	return "", fmt.Errorf("%s is not set", name)
}

func envURL(o *Objects, w *Workload, name string) (*url.URL, error) {
	v, err := envValue(o, w, name)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if u.User == nil {
		u.User = url.User("")
	}
	return u, nil
}

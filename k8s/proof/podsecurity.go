package proof

import (
	"fmt"

	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// CheckPodSecurity evaluates every pod template with the API server's own
// Pod Security admission checks (k8s.io/pod-security-admission), at the level
// and version its namespace enforces. Namespaces that are not part of the
// overlay (kube-system) are skipped.
func CheckPodSecurity(o *Objects) []error {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, w := range o.Workloads() {
		var lv *psaapi.LevelVersion
		for _, n := range o.Namespaces {
			if n.Name != w.Namespace {
				continue
			}
			level, err := psaapi.ParseLevel(n.Labels[psaapi.EnforceLevelLabel])
			if err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: %w", n.Name, err))
				continue
			}
			version := psaapi.LatestVersion()
			if v := n.Labels[psaapi.EnforceVersionLabel]; v != "" {
				if version, err = psaapi.ParseVersion(v); err != nil {
					errs = append(errs, fmt.Errorf("namespace %s: %w", n.Name, err))
					continue
				}
			}
			lv = &psaapi.LevelVersion{Level: level, Version: version}
		}
		if lv == nil {
			continue
		}
		res := policy.AggregateCheckResults(eval.EvaluatePod(*lv, &w.Template.ObjectMeta, &w.Template.Spec))
		if !res.Allowed {
			errs = append(errs, fmt.Errorf("%s: Pod Security %q would reject its pods: %s", w, lv.Level, res.ForbiddenDetail()))
		}
	}
	return errs
}

package auth_test

import (
	"context"
	"testing"

	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

// BenchmarkVerify is the CPU a verified request costs per hop (gateway,
// then the service): keys cached, RS256 signature and claims checked.
func BenchmarkVerify(b *testing.B) {
	is, err := devissuer.Start("127.0.0.1:0", "")
	if err != nil {
		b.Fatal(err)
	}
	defer is.Close()
	v, err := auth.NewVerifier(auth.Config{Issuer: is.URL(), Audience: devissuer.DefaultAudience})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := is.Token(devissuer.Claims{Subject: "alice", Roles: []string{auth.RoleShopper}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil { // fetch the keys once
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

package agent

import (
	"fmt"
	"testing"

	"github.com/berthd/berth/spec"
)

func TestDNSConfig(t *testing.T) {
	c, err := dnsConfig(&spec.Service{DNS: []string{"192.0.2.53", "2001:db8::53"}, DNSSearch: []string{"example.com"}, DNSOptions: []string{"ndots:2"}})
	if err != nil || fmt.Sprint(c.Servers, c.Search, c.Options) != "[192.0.2.53 2001:db8::53] [example.com] [ndots:2]" {
		t.Errorf("dnsConfig = %+v, %v", c, err)
	}
	if _, err := dnsConfig(&spec.Service{DNS: []string{"dns.example.com"}}); err == nil {
		t.Error("dnsConfig took a server that is not an address")
	}
}

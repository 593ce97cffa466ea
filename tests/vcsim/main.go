// vcsim for rigger's tests: govmomi's vSphere simulator (Debian's
// golang-github-vmware-govmomi-dev has its `simulator` package but no vcsim
// command), on loopback over HTTPS with a certificate signed by a CA of its
// own, and a fixed user and password so that bad credentials are refused.
//
//	vcsim -listen 127.0.0.1:0 -ca-out DIR/ca.pem -user U -pass P
//
// Prints `URL https://127.0.0.1:PORT/sdk` and `THUMBPRINT <sha256 hex>` on
// stdout once it answers, then serves until its standard input closes (the
// test harness holds it open) or it is killed.
//
//	vcsim -inspect https://U:P@127.0.0.1:PORT/sdk -vm NAME
//
// reads a VM back through govmomi (an independent client, so that the tests
// do not check rigger's writes with rigger's reads) and prints it as JSON
// (`{"exists": false}` when there is no such VM).
//
// The inventory is simulator.VPX()'s (datacenter DC0, cluster DC0_C0, host
// DC0_H0, datastore LocalDS_0, network "VM Network", VMs DC0_H0_VM0/1 and
// DC0_C0_RP0_VM0/1), with DC0_H0_VM0 powered off, renamed `template-small`
// and marked as a template, for the clone tests.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on")
	caOut := flag.String("ca-out", "", "write the CA certificate (PEM) here")
	user := flag.String("user", "rigger", "the only user name accepted")
	pass := flag.String("pass", "secret", "its password")
	inspect := flag.String("inspect", "", "read a VM from this running simulator's URL and print it as JSON")
	vmName := flag.String("vm", "", "the VM to -inspect")
	infra := flag.Bool("infra", false, "-inspect the datacenters, clusters, datastores and port groups instead of a VM")
	connCount := flag.String("conn-count", "", "write the number of TLS connections accepted so far to this file, at each one")
	flag.Parse()

	if *inspect != "" && *infra {
		if err := inspectInfra(*inspect); err != nil {
			log.Fatalf("inspect: %v", err)
		}
		return
	}
	if *inspect != "" {
		if err := inspectVM(*inspect, *vmName); err != nil {
			log.Fatalf("inspect: %v", err)
		}
		return
	}

	cert, caPEM, err := certificates()
	if err != nil {
		log.Fatalf("certificates: %v", err)
	}
	if *caOut != "" {
		if err := ioutil.WriteFile(*caOut, caPEM, 0o644); err != nil {
			log.Fatalf("write %s: %v", *caOut, err)
		}
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("model: %v", err)
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	var accepted int64
	model.Service.TLS = &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Called once per TLS handshake, i.e. per connection: the count
		// shows whether a client keeps its connection between requests.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			n := atomic.AddInt64(&accepted, 1)
			if *connCount != "" {
				tmp := *connCount + ".tmp"
				if err := ioutil.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", n)), 0o644); err == nil {
					_ = os.Rename(tmp, *connCount)
				}
			}
			return nil, nil
		},
	}
	server := model.Service.NewServer()

	if err := makeTemplate(server.URL); err != nil {
		log.Fatalf("template: %v", err)
	}

	sum := sha256.Sum256(cert.Certificate[0])
	u := *server.URL
	u.User = nil
	fmt.Printf("URL %s\nTHUMBPRINT %x\n", u.String(), sum)
	os.Stdout.Sync()

	// Serve until the harness closes our stdin (or kills us).
	_, _ = io.Copy(ioutil.Discard, os.Stdin)
	server.Close()
	model.Remove()
}

// certificates makes a CA and a server certificate for 127.0.0.1, ::1 and localhost.
func certificates() (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rigger test vcsim CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, caPEM, nil
}

// makeTemplate turns DC0_H0_VM0 into the powered-off template `template-small`.
func makeTemplate(u *url.URL) error {
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, "DC0")
	if err != nil {
		return err
	}
	f.SetDatacenter(dc)
	vm, err := f.VirtualMachine(ctx, "DC0_H0_VM0")
	if err != nil {
		return err
	}
	if task, err := vm.PowerOff(ctx); err == nil {
		_ = task.Wait(ctx)
	}
	task, err := vm.Rename(ctx, "template-small")
	if err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return err
	}
	return vm.MarkAsTemplate(ctx)
}

// inspectVM prints the VM named `name` as JSON.
func inspectVM(raw, name string) error {
	ctx := context.Background()
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, "DC0")
	if err != nil {
		return err
	}
	f.SetDatacenter(dc)
	out := map[string]interface{}{"exists": false}
	vms, err := f.VirtualMachineList(ctx, name)
	if err == nil && len(vms) == 1 {
		var vm mo.VirtualMachine
		if err := vms[0].Properties(ctx, vms[0].Reference(), []string{"name", "config", "runtime", "snapshot", "guest"}, &vm); err != nil {
			return err
		}
		disks := []map[string]interface{}{}
		nics := []map[string]interface{}{}
		buses := map[int32]int32{}
		for _, d := range vm.Config.Hardware.Device {
			if c, ok := d.(types.BaseVirtualSCSIController); ok {
				ctl := c.GetVirtualSCSIController()
				buses[ctl.Key] = ctl.BusNumber
			}
		}
		for _, d := range vm.Config.Hardware.Device {
			switch dev := d.(type) {
			case *types.VirtualDisk:
				disk := map[string]interface{}{"capacity_kb": dev.CapacityInKB, "key": dev.Key}
				if bus, ok := buses[dev.ControllerKey]; ok {
					disk["bus"] = bus
				}
				if dev.UnitNumber != nil {
					disk["unit"] = *dev.UnitNumber
				}
				if b, ok := dev.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
					disk["file"] = b.FileName
					disk["mode"] = b.DiskMode
					if b.ThinProvisioned != nil {
						disk["thin"] = *b.ThinProvisioned
					}
				}
				disks = append(disks, disk)
			case types.BaseVirtualEthernetCard:
				card := dev.GetVirtualEthernetCard()
				network := ""
				switch b := card.Backing.(type) {
				case *types.VirtualEthernetCardNetworkBackingInfo:
					network = b.DeviceName
				case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
					network = "dvportgroup:" + b.Port.PortgroupKey
				}
				nics = append(nics, map[string]interface{}{
					"type":    fmt.Sprintf("%T", d)[7:],
					"network": network,
					"mac":     card.MacAddress,
				})
			}
		}
		snaps := []string{}
		var walk func([]types.VirtualMachineSnapshotTree)
		walk = func(list []types.VirtualMachineSnapshotTree) {
			for _, t := range list {
				snaps = append(snaps, t.Name)
				walk(t.ChildSnapshotList)
			}
		}
		if vm.Snapshot != nil {
			walk(vm.Snapshot.RootSnapshotList)
		}
		out = map[string]interface{}{
			"exists":      true,
			"name":        vm.Name,
			"num_cpus":    vm.Config.Hardware.NumCPU,
			"memory_mb":   vm.Config.Hardware.MemoryMB,
			"guest_id":    vm.Config.GuestId,
			"power_state": string(vm.Runtime.PowerState),
			"template":    vm.Config.Template,
			"disks":       disks,
			"nics":        nics,
			"snapshots":   snaps,
		}
		// What guest customization set (vcsim applies it at power-on).
		if vm.Guest != nil {
			nets := []map[string]interface{}{}
			for _, n := range vm.Guest.Net {
				net := map[string]interface{}{"ip": n.IpAddress}
				if n.DnsConfig != nil {
					net["dns_domain"] = n.DnsConfig.DomainName
					net["dns_servers"] = n.DnsConfig.IpAddress
					net["dns_search"] = n.DnsConfig.SearchDomain
				}
				nets = append(nets, net)
			}
			out["guest"] = map[string]interface{}{
				"hostname":   vm.Guest.HostName,
				"ip_address": vm.Guest.IpAddress,
				"net":        nets,
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// inspectInfra prints what the facts modules report, read with govmomi:
// datacenters, clusters (hosts), datastores (capacity, free) and the port
// groups of each host.
func inspectInfra(raw string) error {
	ctx := context.Background()
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	f := find.NewFinder(c.Client, true)
	dcs, err := f.DatacenterList(ctx, "*")
	if err != nil {
		return err
	}
	out := map[string]interface{}{}
	dcNames := []string{}
	clusters := map[string]interface{}{}
	datastores := []map[string]interface{}{}
	portgroups := map[string][]string{}
	for _, dc := range dcs {
		dcNames = append(dcNames, dc.Name())
		f.SetDatacenter(dc)
		cls, _ := f.ClusterComputeResourceList(ctx, "*")
		for _, cl := range cls {
			var mcl mo.ClusterComputeResource
			if err := cl.Properties(ctx, cl.Reference(), []string{"name", "host"}, &mcl); err != nil {
				return err
			}
			hosts := []string{}
			for _, h := range mcl.Host {
				var mh mo.HostSystem
				if err := c.PropertyCollector().RetrieveOne(ctx, h, []string{"name"}, &mh); err != nil {
					return err
				}
				hosts = append(hosts, mh.Name)
			}
			clusters[mcl.Name] = map[string]interface{}{"datacenter": dc.Name(), "hosts": hosts}
		}
		dss, _ := f.DatastoreList(ctx, "*")
		for _, ds := range dss {
			var mds mo.Datastore
			if err := ds.Properties(ctx, ds.Reference(), []string{"summary"}, &mds); err != nil {
				return err
			}
			datastores = append(datastores, map[string]interface{}{
				"name":     mds.Summary.Name,
				"type":     mds.Summary.Type,
				"capacity": mds.Summary.Capacity,
				"free":     mds.Summary.FreeSpace,
			})
		}
		hs, _ := f.HostSystemList(ctx, "*")
		for _, h := range hs {
			var mh mo.HostSystem
			if err := h.Properties(ctx, h.Reference(), []string{"name", "config.network.portgroup"}, &mh); err != nil {
				return err
			}
			names := []string{}
			if mh.Config != nil && mh.Config.Network != nil {
				for _, pg := range mh.Config.Network.Portgroup {
					names = append(names, pg.Spec.Name)
				}
			}
			portgroups[mh.Name] = names
		}
	}
	out["datacenters"] = dcNames
	out["clusters"] = clusters
	out["datastores"] = datastores
	out["portgroups"] = portgroups
	return json.NewEncoder(os.Stdout).Encode(out)
}

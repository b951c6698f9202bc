// Command etcd is the etcd server, built from the go.etcd.io/etcd/server/v3 version that
// k8s.io/kubernetes requires, so the e2e cluster runs the etcd its apiserver was tested with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

module github.com/carbuild/carbuild/k8s/sim

go 1.26.7

require sigs.k8s.io/yaml v1.4.0

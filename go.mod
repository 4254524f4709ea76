module github.com/ipcframe/ipcframe

go 1.26

require github.com/stretchr/testify v1.12.1

require (
	github.com/golang/snappy v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

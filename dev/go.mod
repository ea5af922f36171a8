module github.com/carbuild/carbuild/dev

go 1.26.0

require github.com/carbuild/carbuild/shared v0.0.0

replace github.com/carbuild/carbuild/shared => ../shared

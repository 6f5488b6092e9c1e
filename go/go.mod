module github.com/litepool/litepool/go

go 1.23

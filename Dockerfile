# One image for every topk service: `docker run topk <command>`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/topk ./cmd/topk

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/topk /usr/local/bin/topk
ENTRYPOINT ["/usr/local/bin/topk"]
CMD ["api"]

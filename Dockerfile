# One image for every topk service: `docker run topk <command>`.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/topk ./cmd/topk
# The runtime directory (TOPK_RUNTIME_DIR in docker-compose.yml), empty here.
RUN mkdir -p /out/runtime

# distroless/static has no shell and no package manager; its nonroot user is
# 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/topk /usr/local/bin/topk
# Owned by the user the services run as, so a named volume mounted here
# starts with that owner (Docker copies the image directory's owner and mode
# into a new named volume) and the aggregator can write its state.
COPY --from=build --chown=65532:65532 /out/runtime /var/lib/topk
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/topk"]
CMD ["api"]

# syntax=docker/dockerfile:1
# Musubi's container image: a static binary on distroless, run as non-root.
#
#   docker build -t musubi:dev .
#   docker run --rm musubi:dev version
#
# The image carries the shipped detection pack in /detections (rules.dir in
# the container's default configuration); mount your own over it or point
# MUSUBI_RULES_DIR elsewhere.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build's identity (musubi version, musubi_build_info):
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) --build-arg DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
        -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
        -o /out/musubi ./cmd/musubi \
    && /out/musubi version

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/musubi /usr/local/bin/musubi
COPY --chown=65532:65532 detections/ /detections/
# Defaults that make sense in a container; every one can be overridden by a
# configuration file (-config), the environment or a flag.
ENV MUSUBI_RULES_DIR=/detections \
    MUSUBI_API_LISTEN=0.0.0.0:8080
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/musubi"]
CMD ["serve"]

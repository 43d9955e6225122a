# One image for every service of the cluster (safekeeper, storage controller, pageserver, proxy with
# its control plane, compute VM, storagectl for the bootstrap); docker-compose.yml picks the program
# with each service's command.
#
# Two ways to the same image, chosen with --target:
#  - prebuilt (what docker-compose.yml builds by default, no registry needed): the services as
#    scripts/docker-images.sh published them on this machine (.docker/app), on base images that
#    script made from Debian packages (storage-local/debian:bookworm, by debootstrap) and from this
#    machine's .NET runtime (storage-local/dotnet-runtime:10.0).
#  - from-source (with a registry): built in Microsoft's SDK image, on debian:bookworm-slim and
#    Microsoft's ASP.NET runtime image (the defaults of the arguments below):
#      docker build --target from-source -t storage-engine:local .
#    or with compose: docker-compose --env-file docker/registry.env up --build
# Stages after the target are not built, and BuildKit skips the ones the target does not use, so
# neither way needs what the other one does.
ARG DEBIAN_IMAGE=debian:bookworm-slim
ARG DOTNET_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0

FROM ${DOTNET_IMAGE} AS dotnet

# Debian 12 ships PostgreSQL 15 (the computes and the pageservers' replay instances need it). No
# cluster is created at install: every PostgreSQL here is made by the services themselves.
FROM ${DEBIAN_IMAGE} AS runtime
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -sf /usr/share/dotnet/dotnet /usr/bin/dotnet
# Like ServiceProcess.RuntimeEnvironment for the processes storagectl starts: idle thread-pool
# workers sleep at once instead of spinning on cores PostgreSQL needs.
ENV DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0 DOTNET_CLI_TELEMETRY_OPTOUT=1
LABEL storage.image=engine
WORKDIR /data
ENTRYPOINT ["dotnet"]

FROM runtime AS prebuilt
COPY .docker/app /app

FROM ${SDK_IMAGE} AS build
WORKDIR /src
COPY Directory.Build.props ./
COPY proto proto
COPY src src
# storagectl references every service, so its publish folder holds them all (they start each other by assembly name).
RUN dotnet publish src/Cli -c Release -o /app

FROM runtime AS from-source
COPY --from=build /app /app

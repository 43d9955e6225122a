# One image for every service of the cluster (safekeeper, storage controller, pageserver, proxy with
# its control plane and compute VMs, storagectl for the bootstrap); docker-compose.yml picks the
# program with each service's command.

# Build: every service published into one folder (they start each other by assembly name).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN for project in Safekeeper StorageController Pageserver Compute ComputeProxy Cli; do \
      dotnet publish "src/$project" -c Release -o /app || exit 1; \
    done

# Run: Debian 12 ships PostgreSQL 15 (the computes and the pageserver's replay instances need it);
# the .NET runtime comes from Microsoft's image.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 ca-certificates libicu72 libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=mcr.microsoft.com/dotnet/aspnet:10.0 /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
COPY --from=build /app /app
WORKDIR /data
ENTRYPOINT ["dotnet"]

"""Repository tooling: loaders and generators shared by the kit's ops folders."""

// The compute proxy and control plane process. Wired together in Program once both halves exist.
return 0;

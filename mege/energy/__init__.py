"""Critics (energies ``U(x)``, low on data) and the critic losses in :mod:`mege.energy.losses`."""

from bioimageio_core.cli import main

main()

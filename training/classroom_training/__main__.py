from classroom_training.cli import main

raise SystemExit(main())

from otel_sqla_doctor.entry import main

if __name__ == "__main__":
    main()

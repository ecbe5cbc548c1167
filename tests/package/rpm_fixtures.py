"""Real rpm databases for the SBOM tests, made by the rpm tool itself, not by this repo.

How they were made (Debian 12, x86_64):

1. Three tiny packages, built with Debian's rpmbuild (rpm 4.18.0+dfsg-1+deb12u1):
     rpmbuild --define "_topdir $T" --define "_source_date_epoch_from_changelog 0" \\
       --define "source_date_epoch 1700000000" --define "use_source_date_epoch_as_buildtime 1" \\
       --define "_buildhost fixtures.invalid" \\
       -bb SPECS/kdt-hello.spec     (and kdt-data.spec; kdt-tool.spec with --target x86_64)
   from these spec files:

       --- SPECS/kdt-data.spec
       Name:           kdt-data
       Version:        0.9
       Release:        3
       Summary:        Fixture package with a non-SPDX license string
       License:        GPLv2+
       BuildArch:      noarch

       %description
       A tiny package for kairos-distro SBOM tests.

       %install
       mkdir -p %{buildroot}/usr/share/kdt-data
       echo hello > %{buildroot}/usr/share/kdt-data/hello.txt

       %files
       /usr/share/kdt-data/hello.txt
       --- SPECS/kdt-hello.spec
       Name:           kdt-hello
       Epoch:          2
       Version:        1.2.3+git20240101
       Release:        1.kdt
       Summary:        Fixture package with an epoch and a plus in its version
       License:        MIT AND BSD-3-Clause
       BuildArch:      noarch

       %description
       A tiny package for kairos-distro SBOM tests.

       %files
       --- SPECS/kdt-tool.spec
       Name:           kdt-tool
       Version:        5.0~rc1
       Release:        0.1
       Summary:        Fixture package built for x86_64
       License:        Apache-2.0

       %description
       A tiny package for kairos-distro SBOM tests.

       %files

2. SQLITE_RPMDB is usr/lib/sysimage/rpm/rpmdb.sqlite as written by Debian's rpm 4.18:
     rpm --dbpath $DB --define "_db_backend sqlite" --initdb
     rpm --dbpath $DB --define "_db_backend sqlite" -i --justdb --nodeps --noscripts RPMS/*/*.rpm
     rpm --dbpath $DB --define "_db_backend sqlite" --import key.asc
   key.asc is a throwaway ed25519 key made with `gpg --quick-gen-key` (rpm stores it as
   a "gpg-pubkey" header, as every signed distro's rpmdb has).

3. NDB_PACKAGES is Packages.db of the ndb backend. Debian's rpm is built without it
   ("warning: invalid %_db_backend: ndb"), so upstream rpm 4.20.1 (tag rpm-4.20.1-release)
   was built from source with cmake -DENABLE_NDB=ON -DWITH_SEQUOIA=OFF -DWITH_OPENSSL=ON and
   most optional features off (and -fhardened dropped from its CMakeLists.txt: Debian 12's
   gcc 12 rejects it), then:
     rpm --dbpath $DB --define "_db_backend ndb" --initdb
     rpm --dbpath $DB --define "_db_backend ndb" -i --justdb --nodeps --noscripts RPMS/*/*.rpm

Each file is zlib-compressed (level 9), then base64. *_QA is the output, line for
line, of `rpm --dbpath $DB -qa --qf "$QA_FORMAT"` against that database with the rpm
that wrote it ("(none)" is how rpm prints a tag the header lacks).
"""

from __future__ import annotations

import base64
import zlib

QA_FORMAT = "%{NAME}|%{EVR}|%{ARCH}|%{LICENSE}|%{SOURCERPM}\n"

SQLITE_RPMDB_SIZE = 225280
SQLITE_RPMDB_B64 = (
    "eNrtnQ9wG9d953exIEFQoiBZkmHZorWKrJK0BGr/YbHI2Yn5B5IoUSRFUZHo2lHe7j6QCEGABkBJdNrE5HQ6vnGm"
    "6Vw6yc3knKZJUycTd9o4zaTOn7nxxe2krd1xY3vm0knG9k1z5ySqozSO67sk9e2fB3B3RSpO05aW5vsZAvt+7719"
    "f36/xW/f7+1aPnVytNSgYrFamycNUeW2crEYd5cochwnOJ8ct4rsfOIBmed+MQLXb/FtbuXUT115X+qnWya7Pt1V"
    "2PzS5rs2Xd50Z+dznbPJLyZHO17suD3xtcSJ9o+239725bZE/ONxRXhQOBh7OtbNL3F/9Qt7Ws7cmkjv3cuv7G8Q"
    "s0xPzRJ5lhKb1lZTe4YmCwNTBXFqYHC0IPasFvSIvXN0SeyZKpyd6hHHxqfEsdOjowfF2crivDgyNlU4UpgMZJfs"
    "i2vkHh6fLIwcGROPF6bFXvfMPnGycLgwWRgbKpwSeyaINUdmaL3HL+tb3tudSO/axa90++MtzczbWf/71sg4vczm"
    "GAdHxwf/w8aY2R3U6Uil3iDlcqNkr6a6w2NdLdiI8d57S3v6UDf/m6WKTS8Ol2oVMk/r59yyc077zYzdbMgjY8OF"
    "s2LPFfV6xPGx1Wy/bXHg1FDf3Te3pzPO1Rhu3pllsPVb1mmdVYs27urIbXu5Z1ci3d3Nr+z1VN2s0DzeHFZz6/wN"
    "uHDfe1Mind3HLyc9NUzVSjMz1BtNS4GBvF1hbaxV29dIoCSg8Zl0Iq06fbVd0RdTZyDrpvW7Cuk+1FNL/dKNifS+"
    "ffxKj6f+QJ1AMh02QrChDbBDZWcindvPL3d5uhk369UybdCQaoOZN4bVs2Z9X0HBooAt5nY4dt/ftHvofKbfYN7O"
    "q3QXMke4t5Y91O2J9P79/EqfZ49gpWB6R9giobY2wiQ3BE0yVK0UyyWrEVJxMHN7WEdr1veVFCwKmmRb0CSh85mO"
    "g3k3XKW7kEnCva2aZGvQJMFKwfS2sElCbW2Et0oFvdVErXq+ZIcv+kDe1rCG1qrtayhQEvRWW4LeKng2U28gK7V+"
    "VyFbhHpa9VZdQW8VqBNIbgkbItjQRthhc9AOk/S+xVItrNlAXldYOWvV9rUTKAnaYVPQDsGzmWoDWZvX7ypkh1BP"
    "q3boDNohUCeQ3BS2Q7ChDbDDWLI93ZPm5z3VHKlVFxea8/SEzrA6QhV8RXhZARXc2pFIp9P8yi2eCrxS7ysZnrZ/"
    "2gZM2Ewk0vIefpn3ZjxI6jS82mvldISnfmVNf/6t/MAF9+52Z925h607V09kemtlJNbrIaTgQActJd/elkjv2cOv"
    "7POU3KrRSrSHlb3axAYo/Fi8Pb1/J1/ylDEW+CG56bawCsau+J2NhX9gtwiJ9M6d/Moub+JuofuJh6c7tkG/pYlY"
    "e/rAAX7aG1v9vrITSJ+rOz9vWrGiohAacaSw17XVQUfqW+C9IGBZ9f066695jEU8enM4/lhb85mYHDkxMDntzWLg"
    "9NT4yJhz3onC2NRBs1w1RTcg8+bsBM17dwVic90/AADAtcpDYizOfWTYSfVxnOBuWL7T+SQ4Lkac41bnYzufjtVN"
    "TOFl59jufGJM/h6TNzP5+0y+lck/YBuhtzH5knNMOp9eJv8jk9/D5FdY/d9l8g9Ze7/H5B+x8s8w+TVW/iiTX2ft"
    "PcHkn7Pyp5n8L0x+1pfjO5j890xO+/Pl40y+ye+P3+pv8sZ3sfLdTL6ZyXNM7vXb45fZ+WfZ+Q8yeZrV/yCTTVb/"
    "j5hsM/mPmUyZ/BiTi0z+EpPLTH7cl7d/mPX3DJP/kpU/x+R/YP2z+W7/rl8/tpvJ3/PLY6Iv8zwrbzC5jV0fF/3r"
    "g+/y24+x+fHbmPx5pu/L7PxX2XhvZPLrTJ5h8s+YPOvLgne9DXFzdiMzS8vlKif3K/3qgZlSQ5EUTZIl2clxSt16"
    "scOli43FGhUX/Lu8eKHUmBVJRaQLVctN2CIRF8qLdbFUEUuNunie1uqlaoUbEBulylLrtGK1Js6RUq1az9ileqNW"
    "FU8Njp8QG7TeqPe7Hc0lH/pW0e+r3l+qnCflkt38KZ0YmRIHxobFwVPDGTUzVCaLdcqdrtQXqFUqlqjNlUuVxYtc"
    "pUpq1uzqvDJXzCvjzau/XrP6awvzAQ14CupsfpyycsnsHarOLzijqVP7cMlf9NX7OFbm5gyXZtzht/ImyFK5SrzK"
    "9aPkvBMEU2dGfZzaL/VrGZnT+vV+yTv637LRL7nT61Devs5Iucy4ImZmOGuhVOVm7i8tcHk2y4xNzRKpZPyZ+3Qs"
    "NooZgyNFNU9lS86TopYzCC3miKSaNG/QIsnbeZMQRTGKZr6YV6lqaIqt2zlT1ois6VmiZfN+W4pqS5qimFqREqd6"
    "LidTI6fkNNk01ZyUy0umatlSVjUoKZqaLiuqSg1FMg3NzOaI4v62fIf3xhs/v8wcnnP5PfG5px9739Znuj9w/5MP"
    "P/vJT339KUun2WyeEs0gznCKhkItiyhZw7bMnE01quV0qspGlsta1CxKxNTlbNYmkmRqqlOc04luqbZp6HqREFuW"
    "8tSwSZGoedUkuqHnaNHQdCIXc/419h3n8BuuP3HTD3U4vugjO3yX6f1Mmi56+pd00ZsiLnp7xCWnIy7ZiLjk2YhL"
    "Lkdc8gMRl/xbEZf8oYhL/ljEJf9BxCV/JuySub/w59R0ydyL/rHpkjnmalou+QyTmy75fMQlP8Daa7rkB5ncdMmf"
    "iLjkRyIu+dGIS/58xCV/IeKSvxFxyU9FXPI3Iy55R8Ql3xRxyeWIS16IuOQHIi75sxGXfCniki9HXPKrYZfsu2zf"
    "JTeq1TKX7ZfeX7NkTuqXuagHNhdL5YbnUC8a+jld+zd1tQNOK7M0ozie6UoHy/prjjLDRplxRhnyqd4Umole56yM"
    "rvWFXey/g5tlxVOlsk1HKu/y70P1q7hfKeKH2bXeEZgWF0yv4Yx9jVzpjN+qrtj1B01X/NlLXzF2tr3QuDT58D2v"
    "/eS1Vx6nmmlaxNI0ahJVlYt2NivpjkN2G9ScIWclOZeVbcopsiQRSaaWZCiGnJXUvCwT6jhyKZ9zymlOzlEj6zRk"
    "KVqOUEXN56ysrmjOkSqySsOu2CEb6/Li/3/inD8AAAAAAAAAAABcN2zmhW6++e5A3I3/46n/4cT/qf+VetZJAAAA"
    "AAAAAAAA4C1IKh7fy3fMLMxkFhbNOboU7xLi3XyH+xqITRpE2BKL7/FF75W72GY+3p3saL4l0unF/3/Npf469a3U"
    "/069Cn0CAAAAAAAAAABvZbYIe/nALsBmoZtv7QF0CXv41R2ATUJ3shn/++//X+ZSl6FBAAAAAAAAAADgutkl4N23"
    "Abx9gP7GxYbQ6cX/P+acPwAAAAAAAAAAAFw/bBb2JFsbAH78/1MO//Y/AAAAAAAAAABwXRIX+KTg//t/j3OpH6a+"
    "k/qb1ONQCwAAAAAAAAAA8BZiazy+j++YWDTLJUs8Tpfq8a2CmxP4v0cKW2ORnFiKj+9LBnP8f//vCS71ROpHqZdS"
    "fwfFAgAAAAAAAAAAb0FSwj4+uAvgysE9gIgc2yLsSwbkLm8vAWoEAAAAAAAAAACuZzoR/wMAAAAAAAAAAIj/AQAA"
    "AAAAAAAAcM3jvv+fSBEu9U+pb6eeSn0t9V9S73dEAAAAAAAAAAAA/DLckojneH5mYabX0FUjp0maYZmyrdlyXzx2"
    "Q3u8h096ha3Mvrb4ab7DzTs+PCUeLl1sLNZoXbyjyFJ3lSrnSblkv6Mv3hWPd/Mdc3YjY5MGEbYI8T2+6P3v/WI7"
    "YvFMMunKjWq13HvR0DO61reZj3cnO5q5nV78X+VS1dR/Tn0s9WTq71Kvpl6A2QAAAAAAAAAAgF+BXUJu7b2AxDah"
    "hw9tBLT3Cqf5N7MN0LZZ6OabmwDxLmEP39oCEHYIGT66ARDbJHQnw/H/t7jUz1L/nPpR6gep76ZecEQAAAAAAAAA"
    "AABcC7QJPB9PeN/t3neb+y3E3e+YEBeSzreQTOLf/wcAAAAAAAAAAK5/8O//AQAAAAAAAAAAiP8BAAAAAAAAAABw"
    "7YP3/wEAAAAAAAAAgOsfPP8HAAAAAAAAAAAQ/wMAAAAAAAAAAODaB+//AwAAAAAAAAAA1z94/g8AAAAAAAAAACD+"
    "BwAAAAAAAAAAwLWP+/4/n/ou5/wBAAAAAAAAAADgWmYXH8/yHYcW67VD9VlSo4fm7EbGJg1ySOj04v+XOecPAAAA"
    "AAAAAAAA1zhpIZtcawPAj/9/yjl/AAAAAAAAAAAAuP6IC3xScN//j6ee51KvpX6QetFJAAAAAAAAAAAA4NogGY/v"
    "4Dteeig5F08KbvI7TlJIxprJWAcf35H0km78L6S+yqW+n3rWOQAAAAAAAAAAAOAtxk4hfpDv2Fa66/kvvf7A0pl3"
    "/u3NL07vfkTYGXOzP/f0Y+/b+kz3B+5/8uFnP/mprz8V28HHDyY7Ln3F2Nn2QuPS5MP3vPaT11553H/+X+BS30x9"
    "KtVwEgAAAAAAAAAAAFibTDx+L9+h5w1FkvNmUbUVWZIsScnn80QzSU6xlaJsSjoheVUuxjOCW90mlkLVvGbqRZKl"
    "xDQUWVekYs6WZKJTM68W80qeWjkhE3OrWzrNZvOUaAZRqVo0FGpZRMkatmXmbKpRLadTVTaysYN8/N5kB9VM0yKW"
    "plGTqE6ndjYr6c5JsqKqmkGLWUnOZWWbdnrx/wkudSL1SOr+1HMwJgAAAAAAAAAA8As4KNzLv+ldALfym94DcCu/"
    "6R2AA8K9yTcb/7vP/3cJD3Kp30ndseXjWya7Pt1V2PzS5rs2Xd50Z+dznbPJLyZHO17suD3xtcSJ9o+239725bZE"
    "/ONxRXhQOBh7OtbNL3F/xdncPetopMM/JKblvfwyX6rY9OKpWSLPUmLT2rk5unSuZAdyxKHJwsBUQRwZGy6cFXuu"
    "rNojjo8F83t6nQJx4NRQ33Lm1kR6715+ZX+DmGW6WmU1tYe1PjUwOFoItSJ6zfRMFc5O9Yhj41Pi2OnR0YPibGVx"
    "3hnLVOFIYTKQ7YxjjdzD45OFkSNj4vHCtNjrntknThYOFyYLY0OFU2LPBLHmyAyt9/hlfct7uxPpXbv4lW5/vKWZ"
    "eTvrf98aGaeX2Rzj4Oj44H/YGDO7gzodqdQbpFxulOzVVHd4rKsFGzHee29pTx/q5n/Tu86GS7UKmaf1c26Ze+00"
    "M3aHL7Ir6vnXWDPbb9u7xO6+uT2dca74cPPsymzKt6zTeugCXm28dfn27Eqku7v5lb2eqpsVmsebw2punb8BF+57"
    "b0qks/v45aSnhqlaaWaGeqNpKTCQtyusjbVq+xoJlAQ0PpNOpFWnr7Yr+mLqDGTdtH5XId2HemqpX7oxkd63j1/p"
    "8dQfqBNIpsNGCDa0AXao7Eykc/v55S5PN+NmvVqmDRpSbTDzxrB61qzvKyhYFLDF3A7H7vubdg+dz/QbzNt5le5C"
    "5gj31rKHuj2R3r+fX+nz7BGsFEzvCFsk1NZGmOSGoEmGqpViuWQ1QioOZm4P62jN+r6SgkVBk2wLmiR0PtNxMO+G"
    "q3QXMkm4t1WTbA2aJFgpmN4WNkmorY3wVqmgt5qoVc+X7PBFH8jbGtbQWrV9DQVKgt5qS9BbBc9m6g1kpdbvKmSL"
    "UE+r3qor6K0CdQLJLWFDBBvaCDtsDtphkt63WKqFNRvI6worZ63avnYCJUE7bAraIXg2U20ga/P6XYXsEOpp1Q6d"
    "QTsE6gSSm8J2CDa0AXYYS7ane9L8vKeaI7Xq4kJznp7QGVZHqIKvCC8roIJbOxLpdJpfucVTgVfqfSXD0/ZP24AJ"
    "m4lEWt7TDD4GSZ2GV3utnI7w1K+s6c+/lR+44N7d7qw797B15+qJTG+tjMR6PYQUHOigpeTb2xLpPXv4lX2ekls1"
    "Won2sLJXm9gAhR+Lt6f37+RLnjLGAj8kN90WVsHYFb+zsfAP7BYhkd65k1/Z5U3cLXQ/8fB0xzbotzQRa08fOMBP"
    "e2Or31cuNei5uvPzphUrKgqhEUcKe11bHXSkvgXeCwKWVd+vs/6ax1jEozeH44+1NZ+JyZETA5PT3iwGTk+Nj4w5"
    "550ojE0dNMtVU3QDstac+9z4n9uKrRsAAAAAAAAAAOB6pmvT33C7uD/hNlU3be18T/Kryc0djyReTlTbf9y+v+2j"
    "be3xE8K3hdnYF2Oj/Iv8bdyfpB7c8vyW8hau6wsbMtx6JpHO9/HL2/xXCRYXFsp0nlZCDzHCuVLklYI1T2GvFYTK"
    "ArtQ+YOJdF8fv5LxH9WHqoWlQ5FH9+EWN2Lf/UBw3/3U4oxTFn7CFMjrj+rqytpNTbVKgvvutwf33YNntyzTysqs"
    "31XEJoGeVvfd+4L77oE6geTBqClWG9oAO9R6nQu3p3nhTlKrOu9cFnbkCUgg90D0wcRaZzSfTQTKAvao9iTSuZ7m"
    "48hwC60nIYHM26/WZeRpSKjHll30X0uke3r4lQPseUigVkjoiz4TCTa3ES/jbNmfSB/J8ssZ9qIBqdSLpTJtrPl2"
    "w5WFvdF3D65yfvMthCurBEy3vOm2RLrgDKhv/QG1XoFYo6U3MZ7ISxFrDadl1+P7HC+S5Vfy7O2IKyuvlfdr0fcl"
    "1uhjA4x9/9sS6TsP8Mu7PNUeXsdMkfz9YY0evqpxD69r1wt7E+n/5PS9c82+mUki2bddveuQHQ+va8I7xIT7sGLl"
    "kGfCSL2I+Law4Q5vvM2sPYk0XiHEK4R4hXD9Vwg5jn8ZrxBe/68QHlfa3fewfj302LlBGnIwnVvzgbNb0tswywed"
    "qRx0pb73ykFTFCqzpGKF37QJ5Glh/axV21dQoCRoCiloiuDZTLuBLHX9rkKmCPW0aopDQVME6gSSStgUwYY24Cdx"
    "vt9ZGPQ1FwaRKHU1VAtmy1eNbKMBWzi0bdnE/e//8fwfAAAAAAAAAAC4vkH8DwAAAAAAAAAAXP/gv/8HAAAAAAAA"
    "AACuf/D8HwAAAAAAAAAAQPwPAAAAAAAAAACAax+8/w8AAAAAAAAAAFz/4Pk/AAAAAAAAAACA+B8AAAAAAAAAAADX"
    "Pnj/HwAAAAAAAAAAuP7B838AAAAAAAAAAADxPwAAAAAAAAAAAK598P4/AAAAAAAAAABw/YPn/wAAAAAAAAAAAOJ/"
    "AAAAAAAAAAAAXPvg/X8AAAAAAAAAAOD6B8//AQAAAAAAAAAAxP8AAAAAAAAAAAC49nHf/4/Fv8l1LjpfAABwTfOQ"
    "GItzHxl2Un0cJ8Sd4zudT8Jxc4Tztzpt59PBavNOnZedY7vrB5n8PSZvZvL3mXwrk3/gHN12b2PyJeeYdD69TP5H"
    "Jr+Hya+w+r/L5B+y9n6PyT9i5Z9h8mus/FEmv87ae4LJP2flTzP5X5j8rC/HdzD575mc9ufLx5l8k98f7+pCcJK7"
    "WPluJt/M5Dkm9/rt8cvs/LPs/AeZPM3qf5DJJqv/R0y2mfzHTKZMfozJRSZ/icllJj/uy9s/zPp7hsl/ycqfY/I/"
    "sP7ZfLd/168f283k7/nlMdGXeZ6VN5jcxq6Pi/71wXf57cfY/PhtTP480/dldv6rbLw3Mvl1Js8w+WdMnvVlwbve"
    "hrg5u5GZpeVylZP7lX71wEypoUiKJsmS7OQ4pW692OHSxcZijYoLxJojM1S8UGrMiqQi0oWq5SZskYgL5cW6WKqI"
    "pUZdPE9r9VK1wg2IjVJlqXVasVoT50ipVq1n7FK9UauKpwbHT4gNWm/U+92O5pIPfavo91XvL1XOk3LJbv6UToxM"
    "iQNjw+LgqeGMmhkqk8U65U5X6gvUKhVL1ObKpcriRa5SJTVrdnVemSvmlfHm1V+vWf21hfmABjwFdTY/Tlm5ZPYO"
    "VecXnNHUqX24VKZjZJ7W+zhW5uYMl2bc4bfyJshSuUq8yvWj5DydqFFnRn2c2i/1axmZ0/r1fsk7+t+y0S+50+tQ"
    "3r7OSLnMuCJmZjhroVTlZu4vLXB5NsuMTc0SqWT8mft0LDaKGYMjRTVPZUvOk6KWMwgt5oikmjRv0CLJ23mTEEUx"
    "ima+mFepamiKrds5U9aIrOlZomXzfluKakuaophakRKnei4nUyOn5DTZNNWclMtLpmrZUlY1KCmami4rqkoNRTIN"
    "zczmiOL+tnyH98YbP7/MNZ/txJ/43NOPvW/rM90fuP/Jh5/95Ke+/pSl02w2T4lmEGc4RUOhlkWUrGFbZs6mGtVy"
    "OlVlI8tlLWoWJWLqcjZrE0kyNdUpzulEt1TbNHS9SIgtS3lq2KRI1LxqEt3Qc7RoaDqRizn/GvuOc/gN15+46Yc6"
    "HF/0kR2+y/R+Jk0XPf1LuuhNERe9PeKS0xGXbERc8mzEJZcjLvmBiEv+rYhL/lDEJX8s4pL/IOKSPxN2ydxf+HNq"
    "umTuRf/YdMkcczUtl3yGyU2XfD7ikh9g7TVd8oNMbrrkT0Rc8iMRl/xoxCV/PuKSvxBxyd+IuOSnIi75mxGXvCPi"
    "km+KuORyxCUvRFzyAxGX/NmIS74UccmXIy751bBL9l2275Ib1WqZy/ZL769ZMif1y1zUA5uLpXLDc6gXDf2crv2b"
    "utoBp5VZmlEcz3Slg2X9NUeZYaPMOKMM+VRvCs1Er3NWRtf6wi7238HNsuKpUtmmI5V3+feh+lXcrxTxw+xa7whM"
    "iwum13DGvkaudMZvVVfs+oOmK/7spa8YO9teaFyafPie137y2iuPU800LWJpGjWJqspFO5uVdMchuw1qzpCzkpzL"
    "yjblFFmSiCRTSzIUQ85Kal6WCXUcuZTPOeU0J+eokXUashQtR6ii5nNWVlc050gVWaVruGIv/o99met43vkC4Jrh"
    "gzfF49x/1ZyU4+zjj64uIrybo3vT6Fx7EcG/I7yI4EfCiwh+MryI4H89vIjgfzu8iBB6w4sI4WB4ESEY4UWEcAeT"
    "/5nJQ+FFhWCFFw1CNbxoEM6H4zLhv4cXAcI3WDlbBAjP+XLzJho3wjfROAnfRON/GL5Jxr1Fy/zwiQK5MD+qTU4f"
    "O35henBw4CiZvGAMDpy0B6ZOyzV7sk4K+dLZ++fvvu/MhTNS1j5LThbfO7hkNQbtiYXznUfOS4XzhVPSUalReNfQ"
    "4BFydlayzx4rW0sDxt3zZc0++q6lu8+ODZAzWWX6zMWFu4f1kbmBk1OHZ2YGxgenZzsHR5SzJ4fvm5SN8VzB0grl"
    "kWnNHjh1om5PTQ6ePFYbmj4/OzBbHx48WT82NGANDc6ePj50cmZ0YObkmYGZE4OdA7Pa4MAsHRgYqB4rBE5e1AuD"
    "AyOnB4+fGjk6nF88umgoB6zDx8aPDOjT980PXJDGS/qUXqt1Hp7OD8xNl6yBk0N24djslHFgeiB3sXjf6aPHCpMX"
    "8mdyp6pH7y+fHTMGxxZpfuRIdmj0zNCFO+/s5GYWZjILi+YcXeIMy5RtzZY53ZTyhkll7vjwlMgWG3XxjuYK4S62"
    "QniH6JxYLlmie3LGZbBwZGRMnDgyIU6cHhwdGRKPF6bFwdHxoeNecSe7Bb9ddO7MGf8229kJ+/0K9rtzcKkw1ulp"
    "t+DEw+ur3rvBvlSuWqQ8W603mPNhlv8FduYmfDsfp0t1rrdSrdA+97rp/QWn+ZWaVxWTdNXIaZK2mttabTk/6I7m"
    "R3t7tGKmdVH+a8sCax43mNmq550lkZw3i6rtLl8sScnn80QzSU6xlaJsSjoheWfRw1Era+vZorOi0TWnqqmZtm6a"
    "phOY54htFi07b7vLNSf+1PJ5My8ZtrN2U52VnJ7N60qWxZkvuZ/f6RXi3H+bcnIcVyvcE4gvv/grxpepSHy5LRJf"
    "3hWJLxci8WUjEl8+GIkvPxiJLz8ciS9/PxJffpq56jhrrxm/tfsun/tTJieZ3Nxy62T1/4zJm5g+/pzJm5n8f5nc"
    "xeo3t7RSLL5j+otvZXJb+Nbl3YJdeSeLF2+LbEn2RrYktciW5F2RLckPRbYkm/M/ws5vzv8ok5vzH2Hn/1kkXv7z"
    "yBbmV5l8Dyt/ksn3snIW78bfHY5vW/H1/4nE169E4usfR+Lr1yPx9f9jcoPFp1uZvBiOn+Pnw/FzMx6P3RaOx2O9"
    "4Xg81h+Jxxci8XgjEo9/IxKPPxWJx78dXkoIbeGlhHCUjbeZPxqOz4WJcHwuTEW2TM+uxuc2aRAnLs9zKrf23qjo"
    "uMzMqYnhs6LjRWmlTkUnCC9VZv41cfr/XCdObz8yMXpeObD+JqhbZ/kP/TayRl42s2ZWUeysXZQM3ZaKRcmUZalo"
    "Ot7M8XFOaGnlZF114lXNdoM63QkbDU0v6iaV1OZKt1atNvyvph6csDifUVuxv8MbDi0tbey2Ks8+XgztDZQJ3pZv"
    "f+Nigzu0WK8dqs+SGj3UHPShX27P1dszOTU0MuLY7WIjGPtbRVm1c8QJ3GVdluWipGgWlbOqo3LnFiNnddcqhEiW"
    "IUmmrWlZ2bSKuprVbVMzZFvx2zKyCjVV27aIrGuWlFOc25gzDOf2pFqaLCsKMcxcViWKVXSsJxOJ2Lpua5KVV1Vq"
    "Z63AffBnz7Ri//albaW7nv/S6w8snXnn39784vTuR2xiKVTNa6ZeJFlKTMMZtSIVc7bk3AepmVeLecUZd45zLpmc"
    "kTOdMN6wNSo5t0BqUDvn3XQtu0hJLkeyWl4zSNEoajk1pxiGTZ0jlYiez6qrsb9rnh3B+F9IfYJLfTv1eOoTiCoB"
    "AAAAAAAAAICNIC3Ed+7f7m7WuJ9zc3TpXMm+qIry3lh8z6Htg6ROK+5OTivRrCKL8tv4+B55rSqzlcV5Vuf/A/vE"
    "Ouo="
)

SQLITE_RPMDB_QA = (
    "kdt-tool|5.0~rc1-0.1|x86_64|Apache-2.0|kdt-tool-5.0~rc1-0.1.src.rpm",
    "kdt-hello|2:1.2.3+git20240101-1.kdt|noarch|MIT AND BSD-3-Clause|kdt-hello-1.2.3+git20240101-1.kdt.src.rpm",  # noqa: E501 (verbatim rpm output)
    "kdt-data|0.9-3|noarch|GPLv2+|kdt-data-0.9-3.src.rpm",
    "gpg-pubkey|8cb1d4d1-6b098be1|(none)|pubkey|(none)",
)

NDB_PACKAGES_SIZE = 8864
NDB_PACKAGES_B64 = (
    "eNrtmF+M3MQdx71/7kgCEYkIhaK08kMeLkLezD/b46oS+VfISfw5cWlJINDOeMZ31m12V2vfcaFVGyQqRSpSKtG3"
    "gvq/gEqlQvkreEHQiodQRaWVCqKCB6oCTdNUhSitQtPx+ue73SF5oEWiD7uSb/zxjGdnxr7P196bewdnHPNpmq0G"
    "5fBntt3Ni+NF5a3AdVPeavgAcMOUTxrOge3zxzzmMY95zGMe85jHPOYxj3nMYx7zJ8s723K2Bu/+90wMDk05Tv2s"
    "Ka8x20Vmf78pN5hNmW0NnGaaN9425aTZ6sDvAF8M/C7wZcAnTLnWbFcA/xWYA5+Enx/mgf8G57eB/w71h4FPQ/09"
    "wGegv6PAH0D9d4H/DfyDkpubgB8CvgLm96tyTs0r4fveLMvmp6H+FPBVJdduAZ4q+6stQX/7yuO1w9Dffmh/BFhC"
    "++9DewX8ILAGfgQ4AX4UuA38y5Ivuw++7yXgX0P9MeC34Pt/C/ynsn19E/A7ZX39ypJr8HNQHda/NgH3Q6+8H2rr"
    "y/7rcD1qG4EfhvWGdaqfgPF+CvgU8Bzwe8DzwMV1rO1yFlTu5d1u2/Fb6Ov9GDuohZ1r0+V8sa/dnogXxJx25WLa"
    "zt2k23eXefDlgDk73DztHFqpL2oWRNrvZp5Ks7zfdWd33nSDm+ssz1rFjbyw9luvJmWnWSvtLIl2qqr/jR2ml3nt"
    "kRZyvtjJejpOk1Qrp512Fpcd+L5qlB6M0jOjbGX9uNXvHVydQrUzZc7yArZ1MOF1w5tp3k7l1K7uwZ4ZSabVtWlb"
    "3ygO6myrA3XFkd3pXDH0lWMz4lC7KwaNsz1iSc/0tZnNSvXetK30dOdLup+l3Y45jbZQi3nYYa2ghQZl+Rejaoeb"
    "2Zaf4l5fMzQtZ3jfu4m43pwT99KuM3dX2nMiWBFPaZmKjleu0qCfxTzxuCMSGmkc40gkLORCJ6FAVOqI60REKpJC"
    "EMITGSUR1ZQzogIVSswEZoEvmB+VfRGqECNEskQL0zwMseYhCRmWkoYojJCksUI+5VokkgWYUKo5QZIz6YeCFP9T"
    "pdjOnSt8MBCbue0ePvEsv3zijfzEzQ8cOP3+6ZPPaCZlLGLGtBSU4kT5Pgo40UWHzAzZRzj0sdIOwQgJhHWMOOHY"
    "RzTCWOhA+ygKTb0Ocai5bzqKCQuFJjQKYz8gzJSaYKrLe/CPpvia2RrF/vsTt32zcLFx8xcKP9dBsveXfjZ3T6M5"
    "5GfxEf18ieXnzwL/BXy3xfL1lOXrr1i+/rbl6+9Yvn7I8vUjlq+ft3z9suXrVyxfvzbq6xr8dF35ulasRWPV17XN"
    "wJWvF4ArX99t+foIcOXre4ErX//U8vXPLV8/Zvn6KcvXz1i+Pm75+neWr1+zfL3Z8rVr+Tq3fL1s+fqI5etHLV+/"
    "Z/n6jOXrs6O+bjirvp7X7XbXwS3SolfPpTlBhCGMsDliaot2dVvgd6b5vCs6ru5142JHucLttRczN+24aZ65S6W6"
    "Plav3zC9191x42535+xuj3q72mIx0+cxfKcr+vH86ry8D83LG8xrRPflCoz6/WN2+wUdDupeQz53gZGez9rlLD9s"
    "7f9fb39watXbz//s5ce+uuH4Z75x14sPvPLDH71wLDbm9SMtGBdmOIkxdhwL4nMVy1BpplkYaIq57/ixlgkSMsC+"
    "rwRCklFTHQYiiKmSPAgSIRRGkeZKJIJGVIqAB6FOOAsETsLzeLu6v15d3zx6/5C/G6VwnC0XDao/b+jAkL+f+B+f"
    "ry+1fL3R8vV2y9c9y9e55esjlq/vtXx9n+Xr71m+/gn4oQn9Vc+vk7AMvwBeC1z5ch20fxz4YliPp4EvAf4n8Hpo"
    "X/noUvAlrF9zA/DEaH7U1gFfDv7dYuXJlJUnzMqT7VaeHLXypJr/dXB+Nf89wNX8p+H8x638edrKn+eAD0D9i8C3"
    "Qz087zfvGH2+X8mrP1t5ddLKq39YeXXGyqt/Aefg/w3Ai6PvD82l0feHKt/qW0bzrT41mm/1lpVvPSvfcivfXrLy"
    "7ZiVb6+P5ltjYjTfGntgvNXx60fzrjEzmneNvVbe7VvNOyVyYd5LIoc65w82t9PteLMzu/e57TTWnUy7JqzSztx/"
    "k2d/uECeTV43c/0SufrCCVa0ufvHZR8+j7D0pU+I8lWCeKBQkiCJMUqkihQxPmZJHOKAGu8zVTzUBka/RnpJIDWi"
    "leP63W5e/qnWwbwWRB5dCUPzOWc+K6v0yWZi9RPHIIsGAwUY5HUrX86dbYtZf1s2L/p6WzXobR8tMAfvjLO7pqfN"
    "dVvOhzM0TjBVoTABiAOMcWJSOdbYp2bJdexjPyiuihAo5iaIFGM+lnESUD9QknGsSNkX94mWVKlY4IDFKCQRJ2YY"
    "CcY0ZhgTIrgMfSpInJirhwUSKggUQ3FkwlT58VCGnj2+kqGThzam23//1JnDh2655jdXvbl/84NKxETTiEmTgb4W"
    "kptRE5SECmERaBnRJCJm3KFjbpmQh9K8xnDFNIoiqblWYcSleWBQJunDUPgsMlmccPPwQEPCudKm1EgEkU9XM7S4"
    "PJuqHJ3ceufrRVYW+fkfNhTpkQ=="
)

NDB_PACKAGES_QA = (
    "kdt-tool|5.0~rc1-0.1|x86_64|Apache-2.0|kdt-tool-5.0~rc1-0.1.src.rpm",
    "kdt-hello|2:1.2.3+git20240101-1.kdt|noarch|MIT AND BSD-3-Clause|kdt-hello-1.2.3+git20240101-1.kdt.src.rpm",  # noqa: E501 (verbatim rpm output)
    "kdt-data|0.9-3|noarch|GPLv2+|kdt-data-0.9-3.src.rpm",
)


def unpack(b64: str) -> bytes:
    return zlib.decompress(base64.b64decode(b64))
